import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { certificateAuthenticator, tokenAuthenticator } from './auth.ts';

const req = (authorization?: string) => ({ headers: authorization ? { authorization } : {} }) as IncomingMessage;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('token authentication', () => {
  const auth = tokenAuthenticator('s3cret-token-s3cret-token-s3cret');
  it('accepts the token as a Basic password (any user) or a Bearer token', () => {
    expect(auth(req(basic('kith', 's3cret-token-s3cret-token-s3cret')))).toEqual({ name: 'owner', via: 'token' });
    expect(auth(req('Bearer s3cret-token-s3cret-token-s3cret'))).toEqual({ name: 'owner', via: 'token' });
  });
  it('refuses anonymous, wrong and malformed credentials', () => {
    for (const h of [undefined, basic('kith', 'nope'), 'Bearer', 'Basic !!!', 'Digest abc', basic('s3cret-token-s3cret-token-s3cret', ''), 'x'.repeat(10000)]) {
      expect(auth(req(h))).toBeUndefined();
    }
  });
});

describe('certificate authentication', () => {
  const FP = 'AB:'.repeat(31) + 'AB';
  const client = { name: 'dns', tokenSha256: 'a'.repeat(64), configWrite: ['dns/zones/'], store: [], certSha256: 'ab'.repeat(32) };
  const auth = certificateAuthenticator([client, { ...client, name: 'mail', certSha256: undefined }]);
  const tlsReq = (cn: string | undefined, authorized = true, fingerprint256 = FP) => ({ headers: {}, socket: { encrypted: true, authorized, getPeerCertificate: () => ({ subject: cn === undefined ? {} : { CN: cn }, fingerprint256 }) } }) as unknown as IncomingMessage;
  it("maps a service's certificate to its link's grants, and the owner's devices to the owner", () => {
    expect(auth(tlsReq('dns'))).toEqual({ name: 'dns', via: 'certificate', configWrite: ['dns/zones/'], store: [] });
    expect(auth(tlsReq('owner', true, 'CD:'.repeat(31) + 'CD'))).toEqual({ name: 'owner', via: 'certificate' });
  });
  it("takes only the certificate issued with the service's link now in force", () => {
    expect(auth(tlsReq('dns', true, 'CD:'.repeat(31) + 'CD'))).toBeUndefined(); // an older one, still signed by the CA
    expect(auth(tlsReq('mail'))).toBeUndefined(); // a link provisioned without a certificate
  });
  it('gives nothing to other names, to certificates TLS did not verify, or without TLS', () => {
    expect(auth(tlsReq('calendar'))).toBeUndefined();
    expect(auth(tlsReq(undefined))).toBeUndefined();
    expect(auth(tlsReq('dns', false))).toBeUndefined();
    expect(auth(tlsReq('owner', false))).toBeUndefined();
    expect(auth({ headers: {}, socket: {} } as unknown as IncomingMessage)).toBeUndefined();
  });
});
