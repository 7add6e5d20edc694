/**
 * The queue runner: every message in the spool is tried until each recipient is delivered
 * or bounced. New messages go at once; failures wait (exponential back-off on 4xx and
 * connection failures); a 5xx or expiry bounces the recipient with a DSN to the sender
 * (never for the null sender). After a restart (or SIGKILL) every message still in the
 * spool is tried again: a message is removed only after the remote's 250, so a crash in
 * between can deliver it twice, never lose it.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../../platform/log.ts';
import type { Metrics } from '../../../platform/metrics.ts';
import { deliver, type Attempt, type RcptResult, type Route } from './deliver.ts';
import { buildDsn, type FailedRecipient } from './dsn.ts';
import { expired, retryDelayMs } from './schedule.ts';
import type { DeliveryState, Envelope, QueuedMessage, Spool } from './spool.ts';

/** How often a message held for the clock is looked at again. */
const HOLD_RECHECK_MS = 5000;

export interface QueueTiming {
  retryInitialSeconds: number;
  retryMaxSeconds: number;
  expireSeconds: number;
  concurrency: number;
}

export interface QueueOptions {
  spool: Spool;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  timing: () => QueueTiming;
  route: () => Route;
  reportingMta: () => string;
  /** Header lines to put before a DSN we generate (its DKIM signature). */
  signDsn?: (text: Buffer, domain: string) => Promise<string>;
  /**
   * DKIM signing that waits for a synchronised clock: messages with `signAs` stay queued
   * (not failed, no attempt counted) until `synchronised()`, then `sign` reads the stored
   * message and the signature is kept in the state file before the first attempt.
   */
  dkim?: { synchronised: () => boolean; sign: (body: Readable, domain: string) => Promise<string>; domainOf: (mta: string) => string | undefined };
  /** Replace the transport (tests). */
  deliver?: (a: Attempt, route: Route) => Promise<Map<string, RcptResult>>;
}

export interface QueueEntry {
  id: string;
  from: string;
  to: string[];
  bytes: number;
  received: string;
  attempts: number;
  nextAt: string;
  lastError?: string;
  /** Waiting for a synchronised clock before it is DKIM-signed and sent. */
  held?: 'clock';
}

export class MailQueue {
  private waiting = new Map<string, number>(); // id → nextAt
  private ready: string[] = [];
  private inFlight = new Set<string>();
  private deleted = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly deliverFn: (a: Attempt, route: Route) => Promise<Map<string, RcptResult>>;
  private readonly counters;
  private drained: (() => void)[] = [];

  private readonly o: QueueOptions;

  constructor(o: QueueOptions) {
    this.o = o;
    this.deliverFn = o.deliver ?? deliver;
    this.counters = {
      delivered: o.metrics.counter('kith_mail_delivered_total', 'Recipients delivered.').with(),
      deferred: o.metrics.counter('kith_mail_deferred_total', 'Delivery attempts that got a temporary failure.').with(),
      bounced: o.metrics.counter('kith_mail_bounced_total', 'Recipients bounced (5xx or expired).').with(),
      queued: o.metrics.gauge('kith_mail_queue_messages', 'Messages in the queue.'),
    };
  }

  /** Load what the spool holds (after a restart every message is due now). */
  async start(): Promise<void> {
    await this.o.spool.init();
    const ids = await this.o.spool.ids();
    for (const id of ids) this.ready.push(id);
    if (ids.length > 0) this.o.log.info('queue recovered', { messages: ids.length });
    this.schedule();
  }

  get size(): number {
    return this.waiting.size + this.ready.length + this.inFlight.size;
  }

  /** Messages just committed, with what is known of them (the first try reads nothing back). */
  private fresh = new Map<string, QueuedMessage>();

  /** A message just committed to the spool: try it now. */
  add(id: string, env?: Envelope): void {
    if (env) this.fresh.set(id, { env, state: { attempts: 0, nextAt: env.received, done: [] }, file: this.o.spool.fileOf(id), bodyBytes: env.bytes });
    this.ready.push(id);
    this.pump();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const tickMs = Math.max(20, Math.min(1000, this.o.timing().retryInitialSeconds * 250));
    this.timer = setTimeout(() => {
      const now = this.o.now();
      for (const [id, at] of this.waiting) {
        if (at <= now) {
          this.waiting.delete(id);
          this.ready.push(id);
        }
      }
      this.pump();
      this.schedule();
    }, tickMs);
    this.timer.unref();
  }

  private pump(): void {
    this.counters.queued.set(this.size);
    const limit = this.o.timing().concurrency;
    while (!this.stopped && this.inFlight.size < limit && this.ready.length > 0) {
      const id = this.ready.shift()!;
      if (this.inFlight.has(id)) continue;
      this.inFlight.add(id);
      void this.run(id).catch((err: Error) => {
        this.o.log.error('delivery failed unexpectedly; retrying later', { id, error: err });
        this.waiting.set(id, this.o.now() + retryDelayMs(1, this.o.timing().retryInitialSeconds, this.o.timing().retryMaxSeconds));
      }).finally(() => {
        this.inFlight.delete(id);
        this.pump();
        if (this.size === 0) for (const d of this.drained.splice(0)) d();
      });
    }
  }

  /** Resolves when nothing is queued (tests, benchmarks). */
  whenEmpty(): Promise<void> {
    return this.size === 0 ? Promise.resolve() : new Promise((r) => this.drained.push(r));
  }

  private async run(id: string): Promise<void> {
    const m = this.fresh.get(id) ?? (await this.o.spool.load(id));
    this.fresh.delete(id);
    if (!m || this.deleted.has(id)) {
      this.deleted.delete(id);
      return;
    }
    const { env, state } = m;
    const now = this.o.now();
    if (state.nextAt > now && state.attempts > 0 && !this.forced.has(id)) {
      this.waiting.set(id, state.nextAt);
      return;
    }
    if (env.signAs && state.dkim === undefined && this.o.dkim) {
      if (!this.o.dkim.synchronised()) {
        // Held, not failed: looked at again shortly; expiry still applies from `received`.
        if (!this.heldLogged.has(id)) {
          this.heldLogged.add(id);
          this.o.log.info('held: DKIM signing waits for a synchronised clock', { id, domain: env.signAs });
        }
        if (!expired(env.received, now, this.o.timing().expireSeconds)) {
          this.waiting.set(id, now + Math.min(HOLD_RECHECK_MS, this.o.timing().retryInitialSeconds * 1000));
          return;
        }
      } else {
        this.heldLogged.delete(id);
        state.dkim = await this.o.dkim.sign(this.o.spool.body(m), env.signAs).catch((err: Error) => {
          this.o.log.warn('DKIM signing failed; sending unsigned', { id, error: err.message });
          return '';
        });
        await this.o.spool.saveState(id, state);
      }
    }
    this.forced.delete(id);
    const timing = this.o.timing();
    const pending = env.rcpts.filter((r) => !state.done.includes(r.to));
    const failed: FailedRecipient[] = [];
    let tempError: string | undefined;
    if (expired(env.received, now, timing.expireSeconds)) {
      for (const r of pending) failed.push({ ...r, status: '5.4.7', diagnostic: `delivery expired after ${Math.round(timing.expireSeconds / 3600)} hours in the queue${state.lastError ? `; last error: ${state.lastError}` : ''}` });
    } else {
      const results = await this.deliverFn({ from: env.from, to: pending.map((r) => r.to), body: () => this.bodyWithHeaders(m), size: m.bodyBytes + Buffer.byteLength(this.prependOf(m)), eightBit: env.eightBit }, this.o.route());
      for (const r of pending) {
        const res = results.get(r.to) ?? { outcome: { kind: 'temp' as const, response: 'no result' } };
        const o = res.outcome;
        if (o.kind === 'ok') {
          state.done.push(r.to);
          this.counters.delivered.inc();
          this.o.log.info('delivered', { id, to: r.to, mta: res.mta, response: o.response.slice(0, 200) });
        } else if (o.kind === 'perm') {
          failed.push({ ...r, status: o.enhanced ?? '5.0.0', diagnostic: o.response, ...(res.mta ? { remoteMta: res.mta } : {}) });
        } else {
          tempError = o.response;
          this.counters.deferred.inc();
          this.o.log.info('deferred', { id, to: r.to, mta: res.mta, response: o.response.slice(0, 300) });
        }
      }
    }
    if (failed.length > 0) {
      this.counters.bounced.inc(failed.length);
      this.o.log.warn('bounced', { id, from: env.from, to: failed.map((f) => f.to), reason: failed[0]!.diagnostic.slice(0, 300) });
      // The DSN is queued before the recipients are marked done: a crash in between sends it twice, never not at all.
      if (env.from !== '') await this.enqueueDsn(m, failed);
      for (const f of failed) state.done.push(f.to);
    }
    if (this.deleted.has(id)) {
      this.deleted.delete(id);
      await this.o.spool.remove(id);
      return;
    }
    if (env.rcpts.every((r) => state.done.includes(r.to))) {
      // A state file exists only once an attempt has been recorded.
      await this.o.spool.remove(id, state.attempts > 0 || state.dkim !== undefined);
      return;
    }
    state.attempts++;
    state.nextAt = now + retryDelayMs(state.attempts, timing.retryInitialSeconds, timing.retryMaxSeconds);
    if (tempError !== undefined) state.lastError = tempError.slice(0, 500);
    await this.o.spool.saveState(id, state);
    this.waiting.set(id, state.nextAt);
  }

  /** Our header lines: a signature made after acceptance goes first, as one made then would. */
  private prependOf(m: QueuedMessage): string {
    return (m.state.dkim ?? '') + m.env.prepend;
  }

  private bodyWithHeaders(m: QueuedMessage): Readable {
    const body = this.o.spool.body(m);
    const prepend = this.prependOf(m);
    if (!prepend) return body;
    const out = new PassThrough();
    out.write(prepend);
    body.on('error', (e) => out.destroy(e));
    body.pipe(out);
    out.on('close', () => body.destroy());
    return out;
  }

  private async headerSection(m: QueuedMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let len = 0;
    for await (const c of this.o.spool.body(m) as AsyncIterable<Buffer>) {
      chunks.push(c);
      len += c.length;
      const s = Buffer.concat(chunks).toString('latin1');
      const end = s.indexOf('\r\n\r\n');
      if (end !== -1) return s.slice(0, end + 2);
      if (len > 256 * 1024) return s.slice(0, 256 * 1024).replace(/[^\r\n]*$/, '');
    }
    return Buffer.concat(chunks).toString('latin1');
  }

  private async enqueueDsn(m: QueuedMessage, failed: FailedRecipient[]): Promise<void> {
    const mta = this.o.reportingMta();
    const now = this.o.now();
    const text = Buffer.from(buildDsn({ reportingMta: mta, originalFrom: m.env.from, originalId: m.env.id, arrival: new Date(m.env.received), now: new Date(now), failed, headers: (this.prependOf(m) + (await this.headerSection(m))).replace(/^(?:DKIM-Signature:.*\r\n(?:[ \t].*\r\n)*)+/i, '') }));
    const w = this.o.spool.writer(now);
    try {
      await w.write(text);
      // While the clock is not synchronised the DSN is held to be signed later, like any message.
      const holdFor = this.o.dkim && !this.o.dkim.synchronised() ? this.o.dkim.domainOf(mta) : undefined;
      const prepend = this.o.signDsn && !holdFor ? await this.o.signDsn(text, mta) : '';
      const env = await w.commit({ from: '', rcpts: [{ to: m.env.from, orcpt: m.env.from }], prepend, received: now, client: { ip: '127.0.0.1', helo: mta }, ...(holdFor ? { signAs: holdFor } : {}) });
      this.o.log.info('DSN queued', { id: env.id, for: m.env.id, to: m.env.from });
      this.add(env.id, env);
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  private forced = new Set<string>();
  private heldLogged = new Set<string>();

  /** Everything queued, oldest first (the management API). */
  async list(): Promise<QueueEntry[]> {
    const out: QueueEntry[] = [];
    for (const id of await this.o.spool.ids()) {
      const m = await this.o.spool.load(id);
      if (!m) continue;
      out.push({
        id,
        from: m.env.from,
        to: m.env.rcpts.filter((r) => !m.state.done.includes(r.to)).map((r) => r.to),
        bytes: m.bodyBytes,
        received: new Date(m.env.received).toISOString(),
        attempts: m.state.attempts,
        nextAt: new Date(this.inFlight.has(id) ? this.o.now() : Math.max(m.state.nextAt, m.env.received)).toISOString(),
        ...(m.state.lastError ? { lastError: m.state.lastError } : {}),
        ...(m.env.signAs && m.state.dkim === undefined && this.o.dkim && !this.o.dkim.synchronised() ? { held: 'clock' as const } : {}),
      });
    }
    return out;
  }

  /** Try now (one message, or all). Returns the ids affected. */
  async retry(id?: string): Promise<string[]> {
    const ids = id ? [id] : await this.o.spool.ids();
    const hit: string[] = [];
    for (const x of ids) {
      if (!(await this.o.spool.load(x))) continue;
      hit.push(x);
      this.forced.add(x);
      if (this.waiting.delete(x)) this.ready.push(x);
      else if (!this.inFlight.has(x) && !this.ready.includes(x)) this.ready.push(x);
    }
    this.pump();
    return hit;
  }

  /** Drop a message without delivering or bouncing it. */
  async remove(id: string): Promise<boolean> {
    if (!(await this.o.spool.load(id))) return false;
    if (this.inFlight.has(id)) this.deleted.add(id);
    this.waiting.delete(id);
    this.ready = this.ready.filter((x) => x !== id);
    await this.o.spool.remove(id);
    this.o.log.info('deleted from the queue', { id });
    this.counters.queued.set(this.size);
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

export type { DeliveryState, Envelope };
