/**
 * PID 1's timekeeper — the thin shell around sntp.ts (codec) and clock.ts (policy):
 *
 *  - restoreClock(): at boot, before any service starts, put the clock forward to the time
 *    saved on the data partition (or the build floor) so it never goes backwards;
 *  - Timekeeper: asks NTP servers (DHCP option 42, else boot.json's servers, else a pool
 *    name resolved through the network's resolvers) over UDP, steps the clock with
 *    clock_settime when a sample is accepted, polls again (clock.ts nextPollMs), saves the
 *    time every hour and at stop, and writes /run/kith/clock.json (platform/clock-state.ts)
 *    for services to read.
 *
 * Everything that touches the machine is injected (the clock, clock setting, files, the
 * port), so the same code runs against chronyd in a test's network namespace.
 */
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileDurableSync } from '../durable.ts';
import type { ClockState } from '../clock-state.ts';
import * as sntp from './sntp.ts';
import { decodeSaved, encodeSaved, judge, nextPollMs, restore, SAVE_EVERY_MS, toSave } from './clock.ts';

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface ClockIo {
  /** The local clock (Unix ms). */
  now: () => number;
  /** Set the local clock; returns errno (0 on success). */
  setClock: (unixMs: number) => number;
  log: Log;
}

export interface TimekeeperOptions extends ClockIo {
  /** Where the time is saved across boots (on the data partition); none: nothing saved. */
  savedFile?: string;
  /** Where services read the clock state (tmpfs). */
  stateFile: string;
  notBefore?: number;
  /** NTP servers from DHCP (option 42), read at each poll: a renewal may change them. */
  dhcpServers: () => string[];
  /** boot.json's servers (addresses or names). */
  servers: string[];
  /** A pool name, resolved through `resolvers` when neither of the above gives a server. */
  pool?: string;
  resolvers: () => string[];
  /** UDP port of the servers (123; tests use others). */
  port?: number;
  timeoutMs?: number;
}

function readText(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** At boot: clock forward to the floor if it is behind. Returns the floor and the state to publish. */
export function restoreClock(o: ClockIo & { savedFile?: string; notBefore?: number }): { floor: number; saved?: number; state: ClockState } {
  const saved = decodeSaved(readText(o.savedFile));
  const now = o.now();
  const r = restore({ now, ...(saved !== undefined ? { saved } : {}), ...(o.notBefore !== undefined ? { notBefore: o.notBefore } : {}) });
  if (r.setTo !== undefined) {
    const errno = o.setClock(r.setTo);
    if (errno === 0) o.log('clock restored', { from: new Date(now).toISOString(), to: new Date(r.setTo).toISOString(), source: r.source });
    else o.log('clock restore failed', { errno, to: new Date(r.setTo).toISOString() });
  }
  return { floor: r.floor, ...(saved !== undefined ? { saved } : {}), state: { synchronised: false, source: r.source } };
}

/** One SNTP exchange with `server`:`port`: the checked reply, or why there is none. */
export function queryServer(server: string, port: number, now: () => number, timeoutMs = 2000): Promise<sntp.Checked & { server: string }> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const { packet, transmit } = sntp.request();
    let t1 = 0;
    const done = (r: sntp.Checked) => {
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      resolve({ ...r, server });
    };
    const timer = setTimeout(() => done({ ok: false, why: `no reply within ${timeoutMs} ms` }), timeoutMs);
    sock.on('error', (err) => done({ ok: false, why: err.message }));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== server || rinfo.port !== port) return; // someone else: keep waiting
      const t4 = now();
      const r = sntp.check(msg, transmit, t1, t4);
      // A reply to something else (a stale one) is ignored; any verdict on ours ends the exchange.
      if (!r.ok && r.why.startsWith('origin timestamp')) return;
      done(r);
    });
    sock.connect(port, server, (err?: Error) => {
      if (err) return done({ ok: false, why: err.message });
      t1 = now();
      sock.send(packet, (e) => { if (e) done({ ok: false, why: e.message }); });
    });
  });
}

export class Timekeeper {
  private state: ClockState;
  private readonly floor: number;
  private saved: number | undefined;
  private failures = 0;
  private kiss: string | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly o: TimekeeperOptions;

  constructor(o: TimekeeperOptions, boot: { floor: number; saved?: number; state: ClockState }) {
    this.o = o;
    this.floor = boot.floor;
    this.saved = boot.saved;
    this.state = boot.state;
    this.publish();
  }

  /** Poll now and on schedule; save every hour. */
  start(): void {
    this.saveTimer = setInterval(() => this.save('hourly'), SAVE_EVERY_MS);
    this.saveTimer.unref();
    void this.poll();
  }

  /** Clean stop: no more polls, the time saved. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.saveTimer);
    this.save('stop');
  }

  current(): ClockState {
    return { ...this.state };
  }

  /** The servers to ask, in order: DHCP's, else the configured ones, else the pool's addresses. */
  async candidates(): Promise<string[]> {
    const dhcp = this.o.dhcpServers();
    if (dhcp.length > 0) return dhcp;
    const named = this.o.servers.length > 0 ? this.o.servers : this.o.pool ? [this.o.pool] : [];
    const out: string[] = [];
    for (const name of named) {
      if (isIPv4(name)) { out.push(name); continue; }
      const resolvers = this.o.resolvers();
      if (resolvers.length === 0) { this.state.lastError = `no resolvers to look up ${name}`; continue; }
      try {
        const r = new Resolver({ timeout: 2000, tries: 2 });
        r.setServers(resolvers);
        out.push(...(await r.resolve4(name)).slice(0, 4));
      } catch (err) {
        this.state.lastError = `cannot resolve ${name}: ${(err as Error).message}`;
      }
    }
    return out;
  }

  /** One round: ask the candidates in turn until one gives an acceptable sample. Returns whether one did. */
  async syncOnce(): Promise<boolean> {
    const servers = await this.candidates();
    if (servers.length === 0) {
      this.state.lastError ??= 'no NTP server: none from DHCP (option 42), none configured, no pool';
      this.failures++;
      this.publish();
      return false;
    }
    this.kiss = undefined;
    for (const server of servers) {
      const r = await queryServer(server, this.o.port ?? 123, this.o.now, this.o.timeoutMs ?? 2000);
      if (!r.ok) {
        if (r.kiss) this.kiss = r.kiss;
        this.state.lastError = `${server}: ${r.why}`;
        this.o.log('ntp reply refused', { server, reason: r.why });
        continue;
      }
      const j = judge(this.o.now(), r.sample.offsetMs, this.floor);
      if (!j.accept) {
        this.state.lastError = `${server}: ${j.why}`;
        this.o.log('ntp reply refused', { server, reason: j.why });
        continue;
      }
      if (j.step !== undefined) {
        const errno = this.o.setClock(j.step);
        if (errno !== 0) {
          this.state.lastError = `clock_settime failed (errno ${errno})`;
          this.o.log('clock step failed', { server, errno });
          continue;
        }
      }
      const wasSynced = this.state.synchronised;
      this.state = {
        synchronised: true, source: 'ntp', server, stratum: r.sample.stratum,
        lastSync: new Date(this.o.now()).toISOString(), offsetMs: Math.round(j.offsetMs),
      };
      this.failures = 0;
      if (j.step !== undefined || !wasSynced) {
        this.o.log(j.step !== undefined ? 'clock stepped' : 'clock synchronised', { server, stratum: r.sample.stratum, offsetMs: Math.round(j.offsetMs), delayMs: Math.round(r.sample.delayMs), now: new Date(this.o.now()).toISOString() });
      }
      this.publish();
      // A stepped clock is worth keeping at once: a power cut now must not lose it.
      if (j.step !== undefined) this.save('synchronised');
      return true;
    }
    this.failures++;
    this.publish();
    return false;
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.syncOnce();
    } catch (err) {
      this.state.lastError = (err as Error).message;
      this.failures++;
    }
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => void this.poll(), nextPollMs({ synced: this.state.synchronised, failures: this.failures, ...(this.kiss ? { kiss: this.kiss } : {}) }));
    this.pollTimer.unref();
  }

  /** Save the time, never earlier than saved before. */
  save(why: string): void {
    if (!this.o.savedFile) return;
    const ms = toSave(this.o.now(), this.saved);
    try {
      mkdirSync(dirname(this.o.savedFile), { recursive: true });
      writeFileDurableSync(this.o.savedFile, encodeSaved(ms));
      // The floor NTP samples are judged by stays this boot's (the time saved at the last
      // run): within a run the clock may be corrected backwards a little; across boots never.
      this.saved = ms;
    } catch (err) {
      this.o.log('clock not saved', { why, error: (err as Error).message });
    }
  }

  /** /run/kith/clock.json: written aside and renamed, so a reader never sees half of it. */
  private publish(): void {
    try {
      mkdirSync(dirname(this.o.stateFile), { recursive: true });
      const tmp = `${this.o.stateFile}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.state) + '\n');
      renameSync(tmp, this.o.stateFile);
    } catch (err) {
      this.o.log('clock state not written', { error: (err as Error).message });
    }
  }
}
