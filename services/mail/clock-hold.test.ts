/**
 * The listener and the queue together (in process, swaks as the client): mail accepted
 * while the clock is not synchronised is queued unsigned with signAs, held, and goes out
 * DKIM-signed (python3-dkim verifies) once the clock is synchronised.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryConfigSource } from '../../platform/config/fs-source.ts';
import { createLogger } from '../../platform/log.ts';
import { createMetrics } from '../../platform/metrics.ts';
import { loadMailConfig } from './config.ts';
import { dkimRecord, loadOrCreateKey, signStream } from './dkim.ts';
import type { Attempt, RcptResult } from './queue/deliver.ts';
import { MailQueue } from './queue/queue.ts';
import type { Outcome } from './queue/schedule.ts';
import { Spool } from './queue/spool.ts';
import { createSmtpListener } from './smtp.ts';
import { dkimVerify } from './test/harness.ts';

/** swaks, without blocking this process (the server under test runs in it). */
function swaks(args: string[]): Promise<{ out: string }> {
  return new Promise((resolve) => {
    const c = spawn('swaks', ['--suppress-data', '--timeout', '20', ...args]);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', () => resolve({ out }));
  });
}

describe('DKIM signing waits for a synchronised clock', () => {
  it('holds mail taken before the clock is set, then signs it from the queue', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-clock-hold-'));
    const r = await loadMailConfig(memoryConfigSource({ 'mail/mail.yaml': 'domains:\n  example.org:\n    aliases:\n      alias: [owner@example.net]\ninbound: { verify: false }\ndkim:\n  selectors:\n    - { name: ed, algorithm: ed25519 }\n' }));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const config = r.value;
    const key = await loadOrCreateKey(dir, 'ed', 'ed25519');
    const clock = { synchronised: false };
    const sent: { to: string[]; body: string }[] = [];
    const log = createLogger({ service: 'mail', level: 'error' });
    const metrics = createMetrics();
    const spool = new Spool(path.join(dir, 'queue'));
    const queue = new MailQueue({
      spool, log, metrics, now: () => Date.now(),
      timing: () => ({ retryInitialSeconds: 0.05, retryMaxSeconds: 0.1, expireSeconds: 3600, concurrency: 4 }),
      route: () => ({ tls: 'opportunistic', verifyCertificates: false, resolver: { host: '127.0.0.1', port: 9 }, mxPort: 25, helo: 'mx.example.org' }),
      reportingMta: () => 'mx.example.org',
      dkim: { synchronised: () => clock.synchronised, sign: (body, domain) => signStream([key], domain, body), domainOf: () => 'example.org' },
      deliver: async (a: Attempt) => {
        const chunks: Buffer[] = [];
        for await (const c of a.body()) chunks.push(c as Buffer);
        sent.push({ to: a.to, body: Buffer.concat(chunks).toString('latin1') });
        return new Map<string, RcptResult>(a.to.map((t) => [t, { outcome: { kind: 'ok', response: '250' } as Outcome }]));
      },
    });
    await queue.start();
    const l = createSmtpListener('mx', {
      config: () => config, spool, queue, tls: undefined, keys: () => [key], checkPassword: async () => false,
      resolver: async () => [], log, metrics, now: () => Date.now(), clockSynchronised: () => clock.synchronised,
    });
    const port = await l.listen('127.0.0.1', 0);
    try {
      const out = await swaks(['--server', `127.0.0.1:${port}`, '--from', 'friend@example.net', '--to', 'alias@example.org', '--header', 'From: friend@example.net', '--header', 'Subject: before the clock']);
      expect(out.out).toMatch(/250 2\.0\.0 Ok: queued as (\S+)/);
      const id = /queued as (\S+)/.exec(out.out)![1]!;
      // Queued unsigned, marked to be signed as the alias's domain, held (no attempt).
      const m = await spool.load(id);
      expect(m!.env.signAs).toBe('example.org');
      expect(m!.env.prepend).not.toMatch(/DKIM-Signature/);
      await new Promise((res) => setTimeout(res, 300));
      expect(sent).toEqual([]);
      expect(await queue.list()).toMatchObject([{ id, held: 'clock', attempts: 0 }]);

      clock.synchronised = true;
      await queue.whenEmpty();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.body).toMatch(/^DKIM-Signature: .*d=example\.org/);
      const eml = path.join(dir, 'out.eml');
      writeFileSync(eml, sent[0]!.body, 'latin1');
      const checked = dkimVerify(eml, { 'ed._domainkey.example.org': dkimRecord(key.privateKey, 'ed25519') });
      expect(checked).toEqual([expect.objectContaining({ selector: 'ed', ok: true })]);

      // With the clock synchronised a message is signed as it is taken, as before.
      const now = await swaks(['--server', `127.0.0.1:${port}`, '--from', 'friend@example.net', '--to', 'alias@example.org', '--header', 'From: friend@example.net']);
      const id2 = /queued as (\S+)/.exec(now.out)?.[1];
      expect(id2).toBeDefined();
      await queue.whenEmpty();
      expect(sent).toHaveLength(2);
      expect(sent[1]!.body).toMatch(/^DKIM-Signature: /);
    } finally {
      queue.stop();
      await l.close();
    }
  });
});
