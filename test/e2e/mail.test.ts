/**
 * The mail service, sealed, with real clients: swaks (Debian) sends, aiosmtpd (Debian's
 * python3-aiosmtpd) is the smarthost answering 250, 4xx and 5xx, python3-dkim verifies the
 * signatures. Inbound for aliases, relay refusal, submission with STARTTLS + AUTH and
 * implicit TLS, the queue's back-off and DSNs, limits applied live, `kith mail queue`.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimRecord } from '../../services/mail/dkim.ts';
import { dkimVerify, replies, repoRoot, startMail, startSink, swaks, testCert, type MailUnderTest, type Sink } from '../../services/mail/test/harness.ts';
import { tempDir } from '../platform/helpers.ts';
import { createCa, issue } from '../../platform/pki/ca.ts';
import { pairDevice, revokeDevice } from '../../platform/pki/devices.ts';
import { loadOrCreateCa } from '../../platform/pki/provision.ts';

/** A device paired with the appliance CA (its own key, certified as pairing does); cert and key files for swaks. */
async function pairedDevice(pkiDir: string, name: string): Promise<{ cert: string; key: string }> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issued = await pairDevice(pkiDir, await loadOrCreateCa(pkiDir), name, new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' })));
  const dir = tempDir(`kith-device-${name}-`);
  writeFileSync(path.join(dir, 'cert.pem'), issued.cert);
  writeFileSync(path.join(dir, 'key.pem'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

/** python3's smtplib as a second client: STARTTLS with a client certificate, then AUTH EXTERNAL; prints each reply. */
function authExternal(port: number, cert: string, key: string, ca: string, authzid = ''): string {
  const py = `
import smtplib, ssl, sys, base64
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20); s.ehlo('client.test'); s.starttls(context=ctx); s.ehlo('client.test')
print('ehlo-auth', s.esmtp_features.get('auth', ''))
az = sys.argv[5]
print(*s.docmd('AUTH', 'EXTERNAL ' + (base64.b64encode(az.encode()).decode() if az else '=')))
print(*s.docmd('MAIL', 'FROM:<me@example.org>'))
s.quit()
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, String(port), cert, key, ca, authzid], { encoding: 'utf8', timeout: 60_000 });
  return r.stdout + r.stderr;
}

const config = (sinkPort: number, extra = '') => `hostname: mx.example.org
domains:
  example.org:
    aliases:
      alias: [owner@example.net]
      team: [a@example.net, b@example.com]
      later: [temp2-later@example.net]
      gone: [perm-gone@example.net]
      stuck: [temp99-stuck@example.net]
users:
  me:
    addresses: [me@example.org]
    ownerToken: true
  ph:
    addresses: [phone@example.org]
    devices: [phone]
outbound:
  smarthost: { host: 127.0.0.1, port: ${sinkPort}, username: relay, password: relaypw }
  tls: require
  resolver: 127.0.0.1:9
queue: { retryInitialSeconds: 0.3, retryMaxSeconds: 0.6 }
inbound: { verify: false }
publish: { enabled: false }
${extra}`;

describe('mail service (sealed) with swaks and an aiosmtpd smarthost', () => {
  let sink: Sink;
  let mail: MailUnderTest;
  let smtp: string[];
  let sub: string[];

  beforeAll(async () => {
    const cert = await testCert(tempDir('kith-sinkca-'));
    sink = await startSink({ tls: cert, auth: 'relay:relaypw' });
    mail = await startMail(config(sink.port));
    smtp = ['--server', `127.0.0.1:${mail.ports.smtp}`];
    sub = ['--server', `127.0.0.1:${mail.ports.submission}`];
  });
  afterAll(async () => {
    await mail?.stop();
    await sink?.stop();
  });

  const records = () => {
    const out: Record<string, string> = {};
    for (const f of readdirSync(path.join(mail.data, 'dkim'))) {
      const [sel, alg] = f.split('.');
      out[`${sel}._domainkey.example.org`] = dkimRecord(readFileSync(path.join(mail.data, 'dkim', f), 'utf8'), alg as 'ed25519' | 'rsa');
    }
    return out;
  };

  it('takes mail for an alias and relays it over STARTTLS + AUTH, signed with both keys (python3-dkim verifies)', async () => {
    const before = sink.messages().length;
    const r = swaks([...smtp, '--from', 'someone@example.net', '--to', 'alias@example.org', '--header', 'Subject: hello alias']);
    expect(replies(r.out).at(-2)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const got = (await sink.waitFor(before + 1)).at(-1)!;
    expect(got.to).toEqual(['owner@example.net']);
    expect(got.from).toBe('someone@example.net');
    expect(got.tls && got.auth).toBe(true);
    expect(got.raw).toMatch(/^DKIM-Signature: v=1; a=ed25519-sha256;/);
    expect(got.raw).toMatch(/\r\nReceived: from .*\r\n\tby mx\.example\.org \(kith\) with ESMTP/);
    const v = dkimVerify(got.file, records());
    expect(v.map((s) => [s.algorithm, s.domain, s.ok])).toEqual([['ed25519-sha256', 'example.org', true], ['rsa-sha256', 'example.org', true]]);
  });

  it('is never an open relay: 554 5.7.1 for other domains, 550 5.1.1 for unknown local parts, no AUTH on 25', () => {
    expect(replies(swaks([...smtp, '--from', 'x@example.net', '--to', 'victim@example.com']).out)).toContain('554 5.7.1 <victim@example.com>: Relay access denied');
    expect(replies(swaks([...smtp, '--from', 'x@example.net', '--to', 'nobody@example.org']).out).join('\n')).toMatch(/^550 5\.1\.1 /m);
    const ehlo = swaks([...smtp, '--quit-after', 'EHLO']).out;
    for (const ext of ['SIZE', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS']) expect(ehlo).toMatch(new RegExp(`<-\\s+250[- ]${ext}`));
    expect(ehlo).not.toMatch(/250[- ]AUTH/);
    // Authenticating on 25 does not make it a relay.
    expect(swaks([...smtp, '--tls', '-au', 'me', '-ap', mail.token, '--from', 'me@example.org', '--to', 'victim@example.com']).out).not.toMatch(/queued as/);
  });

  it('submission: refused without TLS and with a bad password, relayed with STARTTLS + AUTH, only as the user\'s own address', async () => {
    const plain = replies(swaks([...sub, '-au', 'me', '-ap', mail.token, '--from', 'me@example.org', '--to', 'friend@example.com']).out).join('\n');
    expect(plain).toMatch(/^5\d\d 5\.7\.\d+ .*STARTTLS/m);
    expect(replies(swaks([...sub, '--tls', '-au', 'me', '-ap', 'wrong', '--from', 'me@example.org', '--to', 'friend@example.com']).out)).toContain('535 5.7.8 Authentication credentials invalid');
    expect(replies(swaks([...sub, '--tls', '--from', 'me@example.org', '--to', 'friend@example.com']).out).join('\n')).toMatch(/^530 5\.7\.0 /m);
    expect(replies(swaks([...sub, '--tls', '-au', 'me', '-ap', mail.token, '--from', 'ceo@example.org', '--to', 'friend@example.com']).out).join('\n')).toMatch(/^553 5\.7\.1 /m);
    const before = sink.messages().length;
    const ok = swaks([...sub, '--tls', '-au', 'me', '-ap', mail.token, '--from', 'me@example.org', '--to', 'friend@example.com', '--header', 'From: me@example.org']);
    expect(ok.out).toMatch(/250 2\.0\.0 Ok: queued as/);
    const implicit = swaks(['--server', `127.0.0.1:${mail.ports.submissions}`, '--tlsc', '-au', 'me', '-ap', mail.token, '--from', 'me@example.org', '--to', 'other@example.com', '--header', 'From: me@example.org']);
    expect(implicit.out).toMatch(/250 2\.0\.0 Ok: queued as/);
    const got = await sink.waitFor(before + 2);
    expect(got.slice(-2).map((m) => m.to[0]).sort()).toEqual(['friend@example.com', 'other@example.com']);
    for (const m of got.slice(-2)) expect(dkimVerify(m.file, records()).every((s) => s.ok)).toBe(true);
  });

  it('submission by a paired device\'s client certificate (appliance CA): no password, only as its user\'s addresses; AUTH EXTERNAL; other CAs and revoked certificates get nothing', async () => {
    const root = path.dirname(mail.data);
    const pki = path.join(root, 'pki');
    const laptop = await pairedDevice(pki, 'laptop');
    const phone = await pairedDevice(pki, 'phone');
    const tlsArgs = (d: { cert: string; key: string }) => ['--tls', '--tls-cert', d.cert, '--tls-key', d.key];
    const before = sink.messages().length;
    // The laptop is the owner's: it sends as the owner's user (ownerToken), without AUTH.
    const ok = swaks([...sub, ...tlsArgs(laptop), '--from', 'me@example.org', '--to', 'cert-friend@example.com', '--header', 'From: me@example.org']);
    expect(ok.out).toMatch(/250 2\.0\.0 Ok: queued as/);
    expect(replies(swaks([...sub, ...tlsArgs(laptop), '--from', 'ceo@example.org', '--to', 'friend@example.com']).out).join('\n')).toMatch(/^553 5\.7\.1 <ceo@example\.org>: Sender address not owned by user me/m);
    // The phone is listed under another user's devices: it sends only as that user.
    expect(replies(swaks([...sub, ...tlsArgs(phone), '--from', 'me@example.org', '--to', 'friend@example.com']).out).join('\n')).toMatch(/^553 5\.7\.1 .*not owned by user ph/m);
    const implicit = swaks(['--server', `127.0.0.1:${mail.ports.submissions}`, '--tlsc', '--tls-cert', phone.cert, '--tls-key', phone.key, '--from', 'phone@example.org', '--to', 'cert-other@example.com', '--header', 'From: phone@example.org']);
    expect(implicit.out).toMatch(/250 2\.0\.0 Ok: queued as/);
    const got = (await sink.waitFor(before + 2)).filter((m) => /^cert-/.test(m.to[0]!));
    expect(got.map((m) => m.to[0]).sort()).toEqual(['cert-friend@example.com', 'cert-other@example.com']);
    for (const m of got) expect(dkimVerify(m.file, records()).every((x) => x.ok)).toBe(true);

    // AUTH EXTERNAL, from Python's smtplib: advertised, and the identity is the certificate's.
    const ext = authExternal(mail.ports.submission, laptop.cert, laptop.key, mail.ca);
    expect(ext).toMatch(/^ehlo-auth .*EXTERNAL/m);
    expect(ext).toMatch(/^235 b'2\.7\.0 Authentication successful'/m);
    expect(ext).toMatch(/^250 /m);
    expect(authExternal(mail.ports.submission, laptop.cert, laptop.key, mail.ca, 'ph')).toMatch(/^535 b'5\.7\.8 This certificate cannot act as ph'/m);

    // A certificate from another CA, even naming the owner, authenticates nobody.
    const other = await createCa('another CA');
    const forged = await issue(other, { commonName: 'owner', unit: 'laptop', usage: 'client' });
    const fdir = tempDir('kith-forged-');
    writeFileSync(path.join(fdir, 'c.pem'), forged.cert);
    writeFileSync(path.join(fdir, 'k.pem'), forged.key);
    expect(replies(swaks([...sub, ...tlsArgs({ cert: path.join(fdir, 'c.pem'), key: path.join(fdir, 'k.pem') }), '--from', 'me@example.org', '--to', 'friend@example.com']).out).join('\n')).toMatch(/^530 5\.7\.0 Authentication required/m);

    // Revoked (kith revoke laptop): refused once the supervisor's list reaches the service.
    await revokeDevice(pki, root, 'laptop');
    let out = '';
    for (let i = 0; i < 50 && !/535 5\.7\.8 This client certificate has been revoked/.test(out); i++) {
      out = swaks([...sub, ...tlsArgs(laptop), '--from', 'me@example.org', '--to', 'friend@example.com']).out;
      if (!/535/.test(out)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(replies(out).join('\n')).toMatch(/^535 5\.7\.8 This client certificate has been revoked/m);
    expect(out).not.toMatch(/queued as/);
    // The phone is not revoked. (Delivered before the next test counts the sink's messages.)
    const n = sink.messages().length;
    expect(swaks([...sub, ...tlsArgs(phone), '--from', 'phone@example.org', '--to', 'cert-third@example.com', '--header', 'From: phone@example.org']).out).toMatch(/250 2\.0\.0 Ok: queued as/);
    expect((await sink.waitFor(n + 1)).at(-1)!.to).toEqual(['cert-third@example.com']);
  });

  it('retries a 4xx with back-off until it is delivered', async () => {
    const before = sink.messages().length;
    expect(swaks([...smtp, '--from', 'x@example.net', '--to', 'later@example.org']).out).toMatch(/queued as/);
    const got = await sink.waitFor(before + 1, 20_000);
    expect(got.at(-1)!.to).toEqual(['temp2-later@example.net']);
    expect(mail.proc.lines.filter((l) => l.msg === 'deferred' && l.to === 'temp2-later@example.net').length).toBe(2);
  });

  it('bounces a 5xx with an RFC 3464 DSN to the sender, and never bounces a bounce', async () => {
    const before = sink.messages().length;
    expect(swaks([...smtp, '--from', 'sender@example.net', '--to', 'gone@example.org', '--header', 'Subject: will bounce']).out).toMatch(/queued as/);
    const dsn = (await sink.waitFor(before + 1, 20_000)).at(-1)!;
    expect(['', '<>']).toContain(dsn.from); // aiosmtpd records MAIL FROM:<> as '<>'
    expect(dsn.to).toEqual(['sender@example.net']);
    expect(dsn.raw).toMatch(/Content-Type: multipart\/report; report-type=delivery-status/);
    expect(dsn.raw).toMatch(/Final-Recipient: rfc822;perm-gone@example\.net\r\nAction: failed\r\nStatus: 5\.1\.1/);
    expect(dsn.raw).toMatch(/Original-Recipient: rfc822;gone@example\.org/);
    expect(dsn.raw).toMatch(/Subject: will bounce/);
    // A bounce (null sender) that fails is dropped, not bounced.
    const n = sink.messages().length;
    expect(swaks([...smtp, '--from', '<>', '--to', 'gone@example.org']).out).toMatch(/queued as/);
    await mail.proc.waitFor((l) => l.msg === 'bounced' && l.from === '', 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(sink.messages().length).toBe(n);
  });

  it('kith mail queue lists, retries and deletes (--json)', async () => {
    const q = (...a: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'mail', 'queue', ...a, '--url', `http://127.0.0.1:${mail.ports.control}`, '--token', mail.token], { encoding: 'utf8' });
    const sent = swaks([...smtp, '--from', 'x@example.net', '--to', 'stuck@example.org']).out;
    const id = /queued as (\S+)/.exec(sent)![1]!;
    await mail.proc.waitFor((l) => l.msg === 'deferred' && l.id === id, 15_000);
    const list = q('--json');
    expect(list.status, list.stderr).toBe(0);
    const entry = list.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.id === id);
    expect(entry).toMatchObject({ from: 'x@example.net', to: ['temp99-stuck@example.net'], lastError: expect.stringMatching(/451/) });
    expect(q('list').stdout).toContain(id);
    const retry = q('retry', id, '--json');
    expect(JSON.parse(retry.stdout)).toEqual({ retried: [id] });
    expect(q('delete', id).stdout).toBe(`deleted ${id}\n`);
    expect(q('--json').stdout).not.toContain(id);
    expect(q('delete', id).status).toBe(1);
    const bad = spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'mail', 'queue', '--url', `http://127.0.0.1:${mail.ports.control}`, '--token', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unauthorized/);
  });

  it('answers each limit with its code, and a lowered limit applies live', async () => {
    const big = 'x'.repeat(3000);
    expect(replies(swaks([...smtp, '--from', 'x@example.net', '--to', 'alias@example.org', '--body', big]).out).at(-2)).toMatch(/^250 /);
    await mail.reconfigure(config(sink.port, 'limits: { messageBytes: 2048, recipients: 2, connections: 2, commandsBeforeData: 6, idleSeconds: 2 }\n'));
    // Connections: a third one at once gets 421 and is closed; the first two are served.
    const net = await import('node:net');
    const greet = () => new Promise<{ s: import('node:net').Socket; line: string }>((resolve) => {
      const s = net.connect(mail.ports.smtp, '127.0.0.1');
      s.once('data', (d) => resolve({ s, line: d.toString('latin1') }));
    });
    const first = await greet();
    const second = await greet();
    const third = await greet();
    expect([first.line, second.line].every((l) => l.startsWith('220 '))).toBe(true);
    expect(third.line).toMatch(/^421 4\.7\.0 .*Too many connections \(limit 2\)/);
    for (const c of [first, second, third]) c.s.destroy();
    // The server frees their slots once it sees them closed; a session that still finds them
    // taken (a loaded machine) is told 421 Too many connections and is asked again, up to 15 s.
    const roomy = async (session: () => string | Promise<string>) => {
      let out = await session();
      for (const end = Date.now() + 15_000; /Too many connections/.test(out) && Date.now() < end; out = await session()) await new Promise((r) => setTimeout(r, 100));
      return out;
    };
    const tooBig = await roomy(() => replies(swaks([...smtp, '--from', 'x@example.net', '--to', 'alias@example.org', '--body', big]).out).join('\n'));
    expect(tooBig).toMatch(/^552 5\.3\.4 /m);
    const many = await roomy(() => replies(swaks([...smtp, '--from', 'x@example.net', '--to', 'alias@example.org,team@example.org,later@example.org']).out).join('\n'));
    expect(many).toMatch(/^452 4\.5\.3 /m);
    // Commands before DATA: the seventh RSET is answered 421 and the connection closed.
    const rsets = await roomy(() => rawSession(mail.ports.smtp, ['EHLO x', ...Array(7).fill('RSET')]));
    expect(rsets).toMatch(/421 4\.7\.0 .*Too many commands before DATA/);
    // Idle: the server gives up on a silent client after idleSeconds (2, lowered live; the
    // default is minutes, so a 421 inside the 30 s this waits is the new limit at work).
    const t0 = Date.now();
    const idle = await roomy(() => rawSession(mail.ports.smtp, ['EHLO x'], 30_000));
    expect(idle).toMatch(/^421 /m);
    process.stdout.write(`mail: idle client given 421 ${Date.now() - t0} ms after connecting (idleSeconds 2)\n`);
    await mail.reconfigure(config(sink.port));
  });
});

/** Send lines one by one (no pipelining), collect everything the server says until it closes. */
export async function rawSession(port: number, lines: string[], waitMs = 5000): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    let i = 0;
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (out.endsWith('\r\n') && i < lines.length) s.write(lines[i++] + '\r\n');
    });
    const done = () => resolve(out);
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => { s.destroy(); }, waitMs).unref();
  });
}
