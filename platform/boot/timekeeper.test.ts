import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClockState } from '../clock-state.ts';
import { encodeSaved } from './clock.ts';
import { decode, serverReply } from './sntp.ts';
import { restoreClock, Timekeeper } from './timekeeper.ts';

const SAVED = Date.UTC(2026, 11, 1, 12, 0, 0);

/** A loopback NTP "server" whose answer the test chooses: honest, hostile or silent. */
let answer: (req: Buffer) => Buffer | undefined = () => undefined;
let server: dgram.Socket;
let port = 0;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kith-clock-'));
  server = dgram.createSocket('udp4');
  server.on('message', (msg, rinfo) => {
    const out = answer(msg);
    if (out) server.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  port = server.address().port;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The server's clock: the real one, an hour ahead of the fake local clock below. */
const honest = (shiftMs = 0) => (req: Buffer) => {
  const d = decode(req);
  if (!d.ok) return undefined;
  return serverReply({ origin: d.value.transmit, receiveMs: Date.now() + shiftMs, transmitMs: Date.now() + shiftMs, stratum: 3 });
};

function keeper(name: string, saved?: number, timeoutMs = 500) {
  const sets: number[] = [];
  const logs: string[] = [];
  const savedFile = join(dir, name, 'clock.json');
  const stateFile = join(dir, name, 'run', 'clock.json');
  if (saved !== undefined) {
    rmSync(join(dir, name), { recursive: true, force: true });
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(savedFile, encodeSaved(saved));
  }
  // The local clock is an hour behind the real time until it is set.
  let skew = -3_600_000;
  const io = {
    now: () => Date.now() + skew,
    setClock: (ms: number) => { sets.push(ms); skew = ms - Date.now(); return 0; },
    log: (msg: string, f: Record<string, unknown> = {}) => logs.push(`${msg} ${JSON.stringify(f)}`),
  };
  const boot = restoreClock({ ...io, savedFile });
  const k = new Timekeeper({ ...io, savedFile, stateFile, dhcpServers: () => ['127.0.0.1'], servers: [], resolvers: () => [], port, timeoutMs }, boot);
  return { k, sets, logs, savedFile, stateFile };
}

describe('timekeeper against a loopback server', () => {
  it('steps the clock to the server time, publishes synchronised and saves the time at once', async () => {
    answer = honest();
    // A reply may take long on a loaded machine: the honest server is waited for up to 10 s.
    const t = keeper('good', SAVED, 10_000);
    expect(readClockState(t.stateFile)).toEqual({ synchronised: false, source: 'clock' });
    const t0 = Date.now();
    expect(await t.k.syncOnce()).toBe(true);
    const t1 = Date.now();
    // The server read the real clock between t0 and t1, and an NTP offset is right to within
    // half the round trip: so the step, the offset and the time saved at once all fall within
    // the exchange's own window, widened by its length (plus rounding). Tight on a fast
    // machine, and never failing on a slow one (nothing is compared with a later clock).
    const took = t1 - t0 + 2;
    const inWindow = (ms: number) => { expect(ms).toBeGreaterThanOrEqual(t0 - took); expect(ms).toBeLessThanOrEqual(t1 + took); };
    expect(t.sets).toHaveLength(1);
    process.stdout.write(`timekeeper: synchronised in ${t1 - t0} ms; stepped to ${Math.round(t.sets[0]! - t0)} ms after the exchange began\n`);
    inWindow(t.sets[0]!);
    const state = readClockState(t.stateFile);
    expect(state).toMatchObject({ synchronised: true, source: 'ntp', server: '127.0.0.1', stratum: 3 });
    expect(Math.abs(state.offsetMs! - 3_600_000)).toBeLessThanOrEqual(took);
    const saved = JSON.parse(readFileSync(t.savedFile, 'utf8')) as { ms: number };
    inWindow(saved.ms);
    t.k.stop();
  });

  it('refuses kiss-o\'-death, wrong mode, zero transmit, mismatched origin and a step back past the saved time', async () => {
    const kinds: [string, (req: Buffer) => Buffer | undefined, RegExp][] = [
      ['kod', (req) => serverReply({ origin: decode(req).ok ? (decode(req) as { value: { transmit: Buffer } }).value.transmit : Buffer.alloc(8), receiveMs: Date.now(), transmitMs: Date.now(), stratum: 0, refId: Buffer.from('DENY') }), /kiss-o'-death DENY/],
      ['mode', (req) => { const b = honest()(req)!; b[0] = (b[0]! & 0xf8) | 3; return b; }, /mode 3/],
      ['zero', (req) => { const b = honest()(req)!; b.fill(0, 40, 48); return b; }, /transmit timestamp is zero/],
      ['origin', (req) => { const b = honest()(req)!; b[31] = b[31]! ^ 0xff; return b; }, /no reply within/],
      ['silent', () => undefined, /no reply within/],
      ['short', () => Buffer.alloc(12), /short packet/],
    ];
    for (const [name, fn, why] of kinds) {
      answer = fn;
      const t = keeper(name, SAVED);
      expect(await t.k.syncOnce(), name).toBe(false);
      expect(t.sets, name).toEqual([]);
      const state = readClockState(t.stateFile);
      expect(state.synchronised, name).toBe(false);
      expect(state.lastError, name).toMatch(why);
      t.k.stop();
    }
    // The saved time is a day in the future of the server: a server would take time back.
    answer = honest();
    const t = keeper('back', Date.now() + 86_400_000);
    expect(t.sets).toHaveLength(1); // restored forward to the saved time at boot
    expect(await t.k.syncOnce()).toBe(false);
    expect(t.sets).toHaveLength(1);
    expect(readClockState(t.stateFile).lastError).toMatch(/time never goes backwards across boots/);
    t.k.stop();
  });

  it('saves at stop a time never earlier than the saved one', () => {
    answer = honest();
    const future = Date.now() + 86_400_000;
    const t = keeper('stop', future);
    t.k.stop();
    expect((JSON.parse(readFileSync(t.savedFile, 'utf8')) as { ms: number }).ms).toBeGreaterThanOrEqual(future);
  });

  it('tells services there is no appliance clock to worry about when there is no state file', () => {
    expect(readClockState(join(dir, 'nothing.json'))).toEqual({ synchronised: true, source: 'host' });
    writeFileSync(join(dir, 'bad.json'), '{');
    expect(readClockState(join(dir, 'bad.json'))).toMatchObject({ synchronised: false });
  });
});
