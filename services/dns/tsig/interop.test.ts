// Interop with BIND's own tools: keys from `tsig-keygen`, requests signed by `dig -k` /
// `dig -y`, verified by our code; responses signed by our code, verified by dig.
// Needs Debian packages bind9 (tsig-keygen) and bind9-dnsutils (dig).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { parseKeyFile } from './keyfile.ts';
import { signMessage, verifyMessage, appendErrorTsig, type TsigKey, type VerifyResult } from './tsig.ts';

const run = promisify(execFile);

describe('TSIG interop with tsig-keygen and dig', () => {
  let dir: string;
  let sock: Socket;
  let port: number;
  let keys: TsigKey[];
  let seen: VerifyResult[] = [];
  /** How the responder signs: with the right key, a wrong key, or not at all. */
  let mode: 'good' | 'wrong-key' | 'unsigned' = 'good';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-tsig-'));
    const parsed: TsigKey[] = [];
    for (const [name, alg] of [['kith-test-key', 'hmac-sha256'], ['sha512.key', 'hmac-sha512'], ['sha1.key', 'hmac-sha1']]) {
      const { stdout } = await run('/usr/sbin/tsig-keygen', ['-a', alg, name]);
      writeFileSync(join(dir, `${name}.conf`), stdout);
      const r = parseKeyFile(stdout, `${name}.conf`);
      if (!r.ok) throw new Error(JSON.stringify(r.issues));
      parsed.push(...r.keys);
    }
    keys = parsed;
    sock = createSocket('udp4');
    sock.on('message', (msg, rinfo) => {
      const v = verifyMessage(msg, keys, { now: Date.now() });
      seen.push(v);
      let q: dnsPacket.DecodedPacket & { questions: dnsPacket.Question[]; id: number };
      try {
        q = dnsPacket.decode(msg) as typeof q;
      } catch {
        return;
      }
      const resp = dnsPacket.encode({
        type: 'response',
        id: q.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER,
        questions: q.questions,
        answers: [{ type: 'A', name: q.questions[0].name, ttl: 60, data: '192.0.2.1' }],
      });
      let out: Buffer = resp;
      if (v.ok) {
        const signingKey = mode === 'wrong-key' ? { ...keys.find((k) => k.name === v.keyName)!, secret: Buffer.alloc(32, 1) } : keys.find((k) => k.name === v.keyName)!;
        if (mode !== 'unsigned') out = signMessage(resp, signingKey, { now: Date.now(), requestMac: v.mac }).bytes;
      } else if (v.tsig) {
        out = appendErrorTsig(resp, v.tsig, v.error === 'BADKEY' ? 'BADKEY' : 'BADSIG', Date.now());
        out.writeUInt16BE((out.readUInt16BE(2) & ~0xf) | 9, 2); // NOTAUTH
      }
      sock.send(out, rinfo.port, rinfo.address);
    });
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
    port = sock.address().port;
  });

  afterAll(() => {
    sock?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const dig = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run('/usr/bin/dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', ...args], { timeout: 15_000 });
      if (process.env.KITH_DEBUG) console.log(stdout + stderr);
      return stdout + stderr;
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      return (err.stdout ?? '') + (err.stderr ?? '');
    }
  };

  it('verifies what dig -k signs, and dig accepts our signed response', async () => {
    for (const k of ['kith-test-key', 'sha512.key', 'sha1.key']) {
      seen = [];
      mode = 'good';
      const out = await dig('-k', join(dir, `${k}.conf`), 'www.example.com', 'A');
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ ok: true, keyName: k });
      expect(out).toContain('192.0.2.1');
      expect(out).toMatch(/ANY\s+TSIG\s+hmac-sha/);
      expect(out).not.toMatch(/Couldn't verify|could not be validated|expected a TSIG/i);
    }
  });

  it('verifies dig -y hmac-sha256:name:secret', async () => {
    seen = [];
    mode = 'good';
    const k = keys[0];
    const out = await dig('-y', `hmac-sha256:${k.name}:${k.secret.toString('base64')}`, 'Mixed.Case.Example', 'TXT');
    expect(seen[0]).toMatchObject({ ok: true, keyName: 'kith-test-key' });
    expect(out).toContain('192.0.2.1');
    expect(out).not.toMatch(/Couldn't verify|could not be validated/);
  });

  it('dig rejects a response signed with the wrong secret', async () => {
    seen = [];
    mode = 'wrong-key';
    const out = await dig('-k', join(dir, 'kith-test-key.conf'), 'www.example.com', 'A');
    expect(seen[0].ok).toBe(true);
    expect(out).toMatch(/Couldn't verify signature: tsig verify failure/);
    expect(out).toMatch(/Some TSIG could not be validated/);
  });

  it('dig rejects an unsigned response to a signed query', async () => {
    seen = [];
    mode = 'unsigned';
    const out = await dig('-k', join(dir, 'kith-test-key.conf'), 'www.example.com', 'A');
    expect(out).toMatch(/expected a TSIG or SIG\(0\)/);
  });

  it('reports BADSIG when dig signs with a secret we do not share', async () => {
    seen = [];
    mode = 'good';
    const out = await dig('-y', `hmac-sha256:kith-test-key:${Buffer.alloc(32, 3).toString('base64')}`, 'www.example.com', 'A');
    expect(seen[0]).toMatchObject({ ok: false, error: 'BADSIG' });
    expect(out).toMatch(/status: NOTAUTH/);
    expect(out).toMatch(/TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADSIG/);
  });

  it('reports BADKEY for a key name we do not know', async () => {
    seen = [];
    const out = await dig('-y', `hmac-sha256:stranger:${Buffer.alloc(32, 3).toString('base64')}`, 'www.example.com', 'A');
    expect(seen[0]).toMatchObject({ ok: false, error: 'BADKEY' });
    expect(out).toMatch(/TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY/);
  });
});
