/**
 * The appliance's own certificate authority: ECDSA P-256 keys from WebCrypto, X.509
 * certificates from @peculiar/x509 (RFC 5280), verified with node:crypto. The supervisor
 * (`kith up`, PID 1) holds the CA and issues each TLS service a server certificate;
 * pairing will issue client certificates from the same CA, so everything is mutual TLS.
 */
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata
// polyfill loaded first. Only the supervisor (unsealed) issues certificates.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { ClockNotSaneError, readClockState, type ClockState } from '../clock-state.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Pem {
  cert: string;
  key: string;
}

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

async function keyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as KeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']);
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');

export async function createCa(name: string, now = new Date()): Promise<Pem> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 20 * 365 * DAY),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey) };
}

export interface LeafOptions {
  commonName: string;
  /** The subject's OU: a paired device's own name under the principal `owner`. */
  unit?: string;
  /** Host names and IP addresses the certificate is for (server certificates). */
  names?: string[];
  usage: 'server' | 'client';
  days?: number;
  now?: Date;
  /** Certify this public key (SPKI DER, ECDSA P-256) instead of a fresh pair: the key stays with its owner and `key` comes back empty. */
  publicKeySpki?: Uint8Array;
  /**
   * Where the clock's state comes from (default: PID 1's /run/kith/clock.json). Without an
   * explicit `now`, nothing is issued while the clock is not synchronised: a Pi that booted
   * without network time would stamp validity dates from the saved or build time.
   */
  clock?: () => ClockState;
}

/** Issue a server or client certificate signed by the CA. */
export async function issue(ca: Pem, opts: LeafOptions): Promise<Pem> {
  if (!opts.now) {
    const state = (opts.clock ?? readClockState)();
    if (!state.synchronised) throw new ClockNotSaneError(`not issuing a certificate for ${opts.unit ?? opts.commonName}`, state);
  }
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await importKey(ca.key);
  const keys = opts.publicKeySpki
    ? { publicKey: await webcrypto.subtle.importKey('spki', new Uint8Array(opts.publicKeySpki), EC, true, ['verify']), privateKey: undefined }
    : await keyPair();
  const now = opts.now ?? new Date();
  const sans = (opts.names ?? []).map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.commonName}${opts.unit ? `, OU=${opts.unit}` : ''}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + (opts.days ?? 825) * DAY),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: keys.privateKey ? await keyPem(keys.privateKey) : '' };
}

/** The serial number of a PEM certificate, lower-case hex. */
export function serialOf(certPem: string): string {
  return new X509Certificate(certPem).serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
}

/** True when `cert` was signed by `ca` and is valid now (node:crypto's own verifier). */
export function verifyIssued(certPem: string, caPem: string, now = new Date()): boolean {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey) && new Date(cert.validFrom) <= now && now <= new Date(cert.validTo);
}
