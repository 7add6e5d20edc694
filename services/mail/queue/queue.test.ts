import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../platform/log.ts';
import { createMetrics } from '../../../platform/metrics.ts';
import type { Attempt, RcptResult } from './deliver.ts';
import { MailQueue } from './queue.ts';
import type { Outcome } from './schedule.ts';
import { Spool } from './spool.ts';
import { loadOrCreateKey, signStream } from '../dkim.ts';

const MSG = 'From: a@example.net\r\nSubject: hi\r\n\r\nbody\r\n';

async function setup(answer: (a: Attempt, n: number) => Outcome, clock = { t: 1_000_000 }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'kith-queue-'));
  const spool = new Spool(dir);
  const sent: { from: string; to: string[]; body: string }[] = [];
  let n = 0;
  const q = new MailQueue({
    spool,
    log: createLogger({ service: 'mail', level: 'error' }),
    metrics: createMetrics(),
    now: () => clock.t,
    timing: () => ({ retryInitialSeconds: 0.05, retryMaxSeconds: 0.1, expireSeconds: 3600, concurrency: 4 }),
    route: () => ({ tls: 'opportunistic', verifyCertificates: false, resolver: { host: '127.0.0.1', port: 53 }, mxPort: 25, helo: 'mx.test' }),
    reportingMta: () => 'mx.test',
    deliver: async (a) => {
      const chunks: Buffer[] = [];
      for await (const c of a.body()) chunks.push(c as Buffer);
      const o = answer(a, n++);
      if (o.kind === 'ok') sent.push({ from: a.from, to: a.to, body: Buffer.concat(chunks).toString() });
      return new Map<string, RcptResult>(a.to.map((t) => [t, { outcome: o, mta: 'remote.test' }]));
    },
  });
  await q.start();
  const enqueue = async (from: string, to: string) => {
    const w = spool.writer(clock.t);
    await w.write(Buffer.from(MSG));
    const env = await w.commit({ from, rcpts: [{ to, orcpt: to }], prepend: 'X-Added: yes\r\n', received: clock.t, client: { ip: '127.0.0.1', helo: 'x' } });
    q.add(env.id, env);
    return env.id;
  };
  return { q, spool, dir, sent, enqueue, clock };
}

/** Wait until the spool records an attempt for `id` (up to 15 s, for a loaded machine). */
async function attempted(spool: Spool, id: string): Promise<void> {
  await vi.waitFor(async () => expect((await spool.load(id))?.state.attempts).toBeGreaterThan(0), { timeout: 15_000, interval: 10 });
}

describe('the mail queue', () => {
  it('retries a temporary failure with back-off, then delivers with our headers in front, and empties the spool', async () => {
    const clock = { t: 1_000_000 };
    const s = await setup((_a, n) => {
      clock.t += 1000; // each attempt takes a second of the queue's clock: the next one is due
      return n < 2 ? { kind: 'temp', code: 451, response: '451 4.3.0 later' } : { kind: 'ok', response: '250 ok' };
    }, clock);
    await s.enqueue('a@example.net', 'b@example.org');
    await s.q.whenEmpty();
    expect(s.sent).toEqual([{ from: 'a@example.net', to: ['b@example.org'], body: 'X-Added: yes\r\n' + MSG }]);
    expect(readdirSync(s.dir)).toEqual([]);
    s.q.stop();
  });

  it('bounces a permanent failure to the sender with a DSN, and never bounces a bounce', async () => {
    const s = await setup((a) => (a.to[0] === 'gone@example.org' ? { kind: 'perm', code: 550, enhanced: '5.1.1', response: '550 5.1.1 no' } : { kind: 'ok', response: '250' }));
    await s.enqueue('a@example.net', 'gone@example.org');
    await s.q.whenEmpty();
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]).toMatchObject({ from: '', to: ['a@example.net'] });
    expect(s.sent[0]!.body).toMatch(/Status: 5\.1\.1\r\nRemote-MTA: dns;remote\.test\r\nDiagnostic-Code: smtp;550 5\.1\.1 no/);
    await s.enqueue('', 'gone@example.org');
    await s.q.whenEmpty();
    expect(s.sent).toHaveLength(1);
    expect(readdirSync(s.dir)).toEqual([]);
    s.q.stop();
  });

  it('gives up after the expiry with a 5.4.7 DSN', async () => {
    const s = await setup((a) => (a.from === '' ? { kind: 'ok', response: '250' } : { kind: 'temp', response: 'connection refused' }));
    const id = await s.enqueue('a@example.net', 'slow@example.org');
    // At least one attempt first, so that the DSN has a last error to report.
    await attempted(s.spool, id);
    s.clock.t += 3600 * 1000;
    await s.q.whenEmpty();
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]!.body).toMatch(/Final-Recipient: rfc822;slow@example\.org\r\nAction: failed\r\nStatus: 5\.4\.7/);
    expect(s.sent[0]!.body).toMatch(/last error: connection refused/);
    s.q.stop();
  });

  it('after a restart, delivers what the spool holds (with the state of earlier attempts)', async () => {
    const s = await setup(() => ({ kind: 'temp', code: 421, response: '421 busy' }));
    const id = await s.enqueue('a@example.net', 'b@example.org');
    await attempted(s.spool, id);
    s.q.stop();
    const attempts = (await s.spool.load(id))!.state.attempts;
    expect(attempts).toBeGreaterThan(0);
    const sent: string[] = [];
    const q2 = new MailQueue({
      spool: new Spool(s.dir), log: createLogger({ service: 'mail', level: 'error' }), metrics: createMetrics(), now: () => s.clock.t,
      timing: () => ({ retryInitialSeconds: 0.05, retryMaxSeconds: 0.1, expireSeconds: 3600, concurrency: 4 }),
      route: () => ({ tls: 'opportunistic', verifyCertificates: false, resolver: { host: '127.0.0.1', port: 53 }, mxPort: 25, helo: 'mx.test' }),
      reportingMta: () => 'mx.test',
      deliver: async (a) => { sent.push(...a.to); return new Map(a.to.map((t) => [t, { outcome: { kind: 'ok', response: '250' } as Outcome }])); },
    });
    s.clock.t += 1000;
    await q2.start();
    await q2.whenEmpty();
    expect(sent).toEqual(['b@example.org']);
    expect(readdirSync(s.dir)).toEqual([]);
    q2.stop();
  });

  it('holds a message to be DKIM-signed while the clock is not synchronised (no attempt counted), then signs and sends it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-queue-'));
    const key = await loadOrCreateKey(dir, 'sel', 'ed25519');
    const spool = new Spool(path.join(dir, 'queue'));
    const clock = { synchronised: false };
    const sent: string[] = [];
    let tries = 0;
    const q = new MailQueue({
      spool, log: createLogger({ service: 'mail', level: 'error' }), metrics: createMetrics(), now: () => Date.now(),
      timing: () => ({ retryInitialSeconds: 0.05, retryMaxSeconds: 0.1, expireSeconds: 3600, concurrency: 4 }),
      route: () => ({ tls: 'opportunistic', verifyCertificates: false, resolver: { host: '127.0.0.1', port: 53 }, mxPort: 25, helo: 'mx.test' }),
      reportingMta: () => 'mx.test',
      dkim: { synchronised: () => clock.synchronised, sign: (body, domain) => signStream([key], domain, body), domainOf: () => 'example.net' },
      deliver: async (a) => {
        tries++;
        const chunks: Buffer[] = [];
        for await (const c of a.body()) chunks.push(c as Buffer);
        sent.push(Buffer.concat(chunks).toString());
        return new Map(a.to.map((t) => [t, { outcome: { kind: 'ok', response: '250' } as Outcome }]));
      },
    });
    await q.start();
    const w = spool.writer(Date.now());
    await w.write(Buffer.from(MSG));
    const env = await w.commit({ from: 'a@example.net', rcpts: [{ to: 'b@example.org', orcpt: 'b@example.org' }], prepend: 'X-Added: yes\r\n', received: Date.now(), client: { ip: '127.0.0.1', helo: 'x' }, signAs: 'example.net' });
    q.add(env.id, env);
    // Held through several looks of the runner: nothing sent, no attempt recorded, listed as held.
    await new Promise((r) => setTimeout(r, 300));
    expect(tries).toBe(0);
    expect(await q.list()).toMatchObject([{ id: env.id, attempts: 0, held: 'clock' }]);
    clock.synchronised = true;
    await q.whenEmpty();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.net;[^]*s=sel;[^]*\r\nX-Added: yes\r\nFrom: a@example\.net/);
    expect(sent[0]!.endsWith(MSG)).toBe(true);
    expect(readdirSync(path.join(dir, 'queue'))).toEqual([]);
    q.stop();
  });
});
