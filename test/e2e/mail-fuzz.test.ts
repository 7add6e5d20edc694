/**
 * Hostile input against the sealed mail service over real sockets: the named cases (bare
 * LF, over-long lines, 8-bit data without 8BITMIME, huge headers, broken MIME, NULs,
 * malformed commands) each get their reply code, then a few hundred random and mutated
 * sessions (seeded, so a failure replays). Every reply must be a well-formed SMTP reply,
 * the process must stay up, and a normal message must still get its 250 afterwards.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replies, startMail, startSink, swaks, type MailUnderTest, type Sink } from '../../services/mail/test/harness.ts';
import { prng } from '../support/prng.ts';

const SESSIONS = Number(process.env.KITH_MAIL_FUZZ_SESSIONS ?? 300);

/** Write the chunks (each after the previous reply, or all at once), read until close or quiet. */
function session(port: number, chunks: (string | Buffer)[], o: { pipeline?: boolean; quietMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    let i = 0;
    let quiet: NodeJS.Timeout | undefined;
    const finish = () => { clearTimeout(quiet); s.destroy(); resolve(out); };
    const arm = () => { clearTimeout(quiet); quiet = setTimeout(finish, o.quietMs ?? 1500); };
    const sendNext = () => {
      if (i >= chunks.length) return;
      if (o.pipeline) { while (i < chunks.length) s.write(chunks[i++]!); return; }
      s.write(chunks[i++]!);
    };
    s.on('data', (d) => {
      const first = out === '';
      out += d.toString('latin1');
      arm();
      if (first || /\r\n$/.test(out)) sendNext();
    });
    s.on('error', finish);
    s.on('close', finish);
    arm();
  });
}

const wellFormed = (out: string) => out.split('\r\n').filter(Boolean).every((l) => /^[2-5]\d\d[ -]/.test(l));
const codes = (out: string) => out.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3));

describe('SMTP fuzzing (sealed service)', () => {
  let mail: MailUnderTest;
  let sink: Sink;
  let port: number;

  beforeAll(async () => {
    sink = await startSink();
    mail = await startMail(`hostname: mx.example.org
domains:
  example.org:
    aliases:
      alias: [owner@example.net]
outbound:
  smarthost: { host: 127.0.0.1, port: ${sink.port} }
limits: { messageBytes: 65536, headerBytes: 4096, recipients: 5, connections: 50, commandsBeforeData: 30, idleSeconds: 5 }
inbound: { verify: false }
publish: { enabled: false }
`);
    port = mail.ports.smtp;
  });
  afterAll(async () => {
    await mail?.stop();
    await sink?.stop();
  });

  const start = ['EHLO fuzz\r\n', 'MAIL FROM:<a@example.net>\r\n', 'RCPT TO:<alias@example.org>\r\n', 'DATA\r\n'];

  it('bare LF in the body is normalised and accepted; a bare-LF dot does not end DATA (no smuggling)', async () => {
    const out = await session(port, [...start, 'Subject: lf\nX: y\n\nbody\n.\nMAIL FROM:<evil@example.net>\n\r\n.\r\n', 'QUIT\r\n']);
    expect(codes(out).slice(-2)).toEqual(['250', '221']);
    expect(out).not.toMatch(/250 2\.1\.0 .*\r\n250 2\.0\.0[^\r]*\r\n250/); // the smuggled MAIL was body, not a command
    const got = (await sink.waitFor(1)).at(-1)!;
    expect(got.raw).toMatch(/Subject: lf\r\nX: y\r\n\r\nbody\r\n\.\r\nMAIL FROM:<evil@example.net>\r\n/);
  });

  it('refuses an over-long command line, 8-bit data without 8BITMIME, a huge header section, and takes broken MIME', async () => {
    const long = await session(port, ['EHLO fuzz\r\n', `MAIL FROM:<${'a'.repeat(20_000)}@example.net>\r\n`, 'NOOP\r\n']);
    expect(wellFormed(long)).toBe(true);
    expect(long).toMatch(/\r\n500 5\.5\.2 Line too long/);
    const eight = await session(port, [...start, Buffer.from('Subject: caf\xe9\r\n\r\n\xff\xfe\r\n.\r\n', 'latin1'), 'QUIT\r\n']);
    expect(eight).toMatch(/\r\n554 5\.6\.0 /);
    const eightOk = await session(port, ['EHLO fuzz\r\n', 'MAIL FROM:<a@example.net> BODY=8BITMIME\r\n', 'RCPT TO:<alias@example.org>\r\n', 'DATA\r\n', Buffer.from('Subject: caf\xe9\r\n\r\nok\r\n.\r\n', 'latin1'), 'QUIT\r\n']);
    expect(codes(eightOk).slice(-2)).toEqual(['250', '221']);
    const huge = await session(port, [...start, `Subject: x\r\n${'X-Junk: ' + 'j'.repeat(70) + '\r\n'}`.repeat(1) + ('X-Junk: ' + 'j'.repeat(70) + '\r\n').repeat(200) + '\r\nbody\r\n.\r\n', 'QUIT\r\n']);
    expect(huge).toMatch(/\r\n552 5\.3\.4 Message header section too big/);
    const mime = await session(port, [...start, 'Subject: mime\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="\r\n\r\n--x\r\nContent-Type: text/plain; charset=\r\n\r\n--y--\r\n=ZZ=\r\n.\r\n', 'QUIT\r\n']);
    expect(codes(mime).slice(-2)).toEqual(['250', '221']);
  });

  it('answers malformed commands with 5xx and keeps the session', async () => {
    const out = await session(port, ['EHLO fuzz\r\n', 'MAIL FROM:nobracket\r\n', 'RCPT TO:<x@example.org>\r\n', 'FROB\r\n', 'MAIL FROM:<a@example.net> SIZE=abc\r\n', 'DATA\r\n', 'AUTH PLAIN AAAA\r\n', '\x00\x01\x02\r\n', 'NOOP\r\n']);
    expect(wellFormed(out)).toBe(true);
    const after = out.slice(out.indexOf('\r\n250 ') + 2).split('\r\n').filter(Boolean).slice(1).map((l) => l.slice(0, 3));
    expect(after).toEqual(['501', '503', '500', '501', '503', '500', '500', '250']);
  });

  it(`survives ${SESSIONS} random and mutated sessions with well-formed replies`, { timeout: 300_000 }, async () => {
    const rnd = prng(2026);
    const pick = <T,>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    const mutate = (s: string): string | Buffer => {
      switch (Math.floor(rnd() * 8)) {
        case 0: return s.replace(/\r\n$/, '\n');
        case 1: return s.slice(0, Math.floor(rnd() * s.length));
        case 2: return s + 'x'.repeat(Math.floor(rnd() * 3000));
        case 3: return Buffer.concat([Buffer.from(s.slice(0, 4)), bytes(1 + Math.floor(rnd() * 40)), Buffer.from('\r\n')]);
        case 4: return s.toLowerCase();
        case 5: return s.replace(/</g, '').replace(/>/g, '');
        case 6: return s.repeat(2 + Math.floor(rnd() * 4));
        default: return s;
      }
    };
    const vocab = ['EHLO f\r\n', 'HELO f\r\n', 'MAIL FROM:<a@example.net>\r\n', 'MAIL FROM:<> BODY=8BITMIME SMTPUTF8\r\n', 'RCPT TO:<alias@example.org>\r\n', 'RCPT TO:<x@example.com>\r\n', 'DATA\r\n', 'RSET\r\n', 'NOOP\r\n', 'VRFY alias\r\n', 'HELP\r\n', 'BDAT 10 LAST\r\n', 'STARTTLS\r\n', 'AUTH LOGIN\r\n', 'QUIT\r\n', 'Subject: x\r\n\r\nbody\r\n.\r\n', '.\r\n'];
    let failures = 0;
    const failed: string[] = [];
    const run = async (n: number) => {
      const chunks: (string | Buffer)[] = [];
      const len = 1 + Math.floor(rnd() * 12);
      for (let k = 0; k < len; k++) chunks.push(rnd() < 0.1 ? bytes(1 + Math.floor(rnd() * 300)) : mutate(pick(vocab)));
      const out = await session(port, chunks, { pipeline: rnd() < 0.3, quietMs: 400 });
      if (!wellFormed(out)) {
        failures++;
        if (failed.length < 3) failed.push(`session ${n}: ${JSON.stringify(out.slice(0, 400))}`);
      }
    };
    for (let n = 0; n < SESSIONS; n += 10) await Promise.all(Array.from({ length: Math.min(10, SESSIONS - n) }, (_, j) => run(n + j)));
    expect(failed).toEqual([]);
    expect(failures).toBe(0);
    expect(mail.proc.child.exitCode).toBeNull();
    const health = await fetch(`http://127.0.0.1:${mail.ports.health}/healthz`);
    expect(health.status).toBe(200);
    expect(replies(swaks(['--server', `127.0.0.1:${port}`, '--from', 'a@example.net', '--to', 'alias@example.org']).out).at(-2)).toMatch(/^250 2\.0\.0 /);
  });
});
