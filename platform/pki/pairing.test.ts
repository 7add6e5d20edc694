import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCa, issue, verifyIssued } from './ca.ts';
import { generator, sessionKey, share } from './cpace.ts';
import { MAX_FAILURES, newCode, normalCode, pairWith, PairingError, PairingServer } from './pairing.ts';

const enc = new TextEncoder();

async function setup(now: { t: number }, standingSecret?: string) {
  const ca = await createCa('kith test CA');
  const codes: string[] = [];
  const server = new PairingServer({
    appliance: 'kith',
    ...(standingSecret ? { standingSecret } : {}),
    now: () => now.t,
    onCode: (c) => codes.push(c),
    issue: async (device, spki) => ({ ca: ca.cert, cert: (await issue(ca, { commonName: device, usage: 'client', publicKeySpki: spki })).cert, password: `password of ${device}` }),
  });
  const post = async (path: string, body: unknown) => (path === '/pair/start' ? server.start(body as object) : server.finish(body as object));
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(key.publicKey.export({ type: 'spki', format: 'der' }));
  return { ca, server, codes, post, key, spki };
}

describe('CPace over ristretto255', () => {
  it('gives both sides the same key with the same code, different keys otherwise', () => {
    const sid = enc.encode('0123456789abcdef');
    const ci = enc.encode('ci');
    const a = share(enc.encode('ABCD1234'), ci, sid);
    const b = share(enc.encode('ABCD1234'), ci, sid);
    const c = share(enc.encode('ABCD1235'), ci, sid);
    const ka = sessionKey({ mine: a, theirs: b.Y, sid, initiator: true });
    expect(sessionKey({ mine: b, theirs: a.Y, sid, initiator: false })).toEqual(ka);
    expect(sessionKey({ mine: c, theirs: a.Y, sid, initiator: false })).not.toEqual(ka);
    expect(generator(enc.encode('x'), ci, sid).equals(generator(enc.encode('y'), ci, sid))).toBe(false);
    // The identity is refused.
    expect(() => sessionKey({ mine: a, theirs: new Uint8Array(32), sid, initiator: true })).toThrow(/invalid share/);
  });
});

describe('pairing', () => {
  it('with the right code: a client certificate for the device’s own key, from the appliance CA; the code is then used up', async () => {
    const now = { t: 0 };
    const { ca, server, codes, post, key, spki } = await setup(now);
    const r = await pairWith({ code: codes[0]!.toLowerCase(), device: 'laptop', publicKeySpki: spki, post });
    expect(r.appliance).toBe('kith');
    expect(r.ca).toBe(ca.cert);
    expect(verifyIssued(r.cert, ca.cert)).toBe(true);
    const cert = new X509Certificate(r.cert);
    expect(cert.subject).toBe('CN=laptop');
    expect(cert.checkPrivateKey(key.privateKey)).toBe(true);
    expect(r.password).toBe('password of laptop'); // the device password, inside the box
    expect(codes.length).toBe(2);
    expect(server.currentCode.code).toBe(codes[1]);
    await expect(pairWith({ code: codes[0]!, device: 'phone', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 403 });
  });

  it('refuses a wrong code, slows a burst down, burns the code after 10, and lets codes expire', async () => {
    const now = { t: 0 };
    const { codes, post, spki } = await setup(now);
    await expect(pairWith({ code: 'WRONG-CODE', device: 'laptop', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 403, message: 'wrong pairing code' });
    const burst = await pairWith({ code: 'WRONG-CODE', device: 'laptop', publicKeySpki: spki, post }).catch((e: PairingError) => e);
    expect(burst).toMatchObject({ status: 429, retryAfterMs: 500 });
    for (let i = 2; i <= MAX_FAILURES; i++) {
      now.t += 60_000;
      await expect(pairWith({ code: 'WRONG-CODE', device: 'laptop', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 403 });
    }
    expect(codes.length).toBe(2); // burnt and replaced
    now.t += 11 * 60_000;
    await expect(pairWith({ code: codes[1]!, device: 'laptop', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 410 });
  });

  it('turns away hostile start and finish bodies with 400s, never throwing anything else', async () => {
    const now = { t: 0 };
    const { server } = await setup(now);
    for (const body of [{}, { sid: 1 }, { sid: 'AAAA', Ya: 'AAAA', device: 'x' }, { sid: 'A'.repeat(24), Ya: '!!', device: 'x' }, { sid: 'A'.repeat(24), Ya: 'A'.repeat(43), device: 'BAD NAME' }, { sid: 'A'.repeat(24), Ya: '_'.repeat(43), device: 'x' }, { sid: 'A'.repeat(24), Ya: 'A'.repeat(43), device: 'x', kind: 'password' }]) {
      expect(() => server.start(body)).toThrow(PairingError);
    }
    await expect(server.finish({ sid: 'A'.repeat(24), tag: 'AA', box: 'AA' })).rejects.toMatchObject({ status: 404 });
  });

  it('with the owner seed’s secret: pairs, again for a second device, and leaves the short code alone', async () => {
    const now = { t: 0 };
    const seed = 'ABCDE-FGHJK-MNPQR-STVWX-YZ234';
    const { ca, server, codes, post, spki } = await setup(now, seed);
    const r = await pairWith({ code: seed.toLowerCase().replace(/-/g, ' '), device: 'laptop', publicKeySpki: spki, post });
    expect(verifyIssued(r.cert, ca.cert)).toBe(true);
    expect(codes.length).toBe(1); // the short code was not used up
    expect((await pairWith({ code: seed, device: 'phone', publicKeySpki: spki, post })).appliance).toBe('kith');
    // A wrong seed secret is a wrong guess like any other, and the short code still works.
    await expect(pairWith({ code: 'ABCDE-FGHJK-MNPQR-STVWX-YZ235', device: 'tablet', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 403 });
    now.t += 60_000;
    expect((await pairWith({ code: server.currentCode.code, device: 'tablet', publicKeySpki: spki, post })).appliance).toBe('kith');
  });

  it('without a seed secret, a client claiming one only gets a wrong-code answer', async () => {
    const now = { t: 0 };
    const { post, spki } = await setup(now);
    await expect(pairWith({ code: 'ABCDE-FGHJK-MNPQR-STVWX-YZ234', device: 'laptop', publicKeySpki: spki, post })).rejects.toMatchObject({ status: 403 });
  });

  it('makes readable codes', () => {
    for (let i = 0; i < 200; i++) expect(newCode()).toMatch(/^[A-HJKMNP-TV-Z2-9]{4}-[A-HJKMNP-TV-Z2-9]{4}$/);
    expect(normalCode(' abcd-efgh ')).toBe('ABCDEFGH');
  });
});

describe('code expiry', () => {
  it('a code past its time is replaced when next looked at, with the reason', async () => {
    const now = { t: 0 };
    const whys: string[] = [];
    const server = new PairingServer({ appliance: 'kith', now: () => now.t, codeTtlMs: 1000, onCode: (_c, _e, why) => whys.push(why), issue: async () => ({ ca: '', cert: '' }) });
    const first = server.currentCode.code;
    now.t = 999;
    expect(server.currentCode.code).toBe(first);
    now.t = 1000;
    expect(server.currentCode).toMatchObject({ expiresAt: 2000 });
    expect(server.currentCode.code).not.toBe(first);
    expect(whys).toEqual(['start', 'the previous code expired']);
  });
});
