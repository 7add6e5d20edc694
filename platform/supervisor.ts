/**
 * Supervise service processes: start each, read its JSON log lines, restart one that dies
 * (exponential back-off, reset after a stable minute) without touching the others, stop
 * all cleanly. Used by `kith up` on a workstation and by PID 1 on the appliance.
 *
 * Each child gets a lifeline (platform/lifeline.ts): if this process dies, even by
 * SIGKILL, its children see the lifeline close and stop. status() says, per child, the
 * live pid, when the current run started, how many restarts, and the back-off state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LIFELINE_ENV, LIFELINE_FD } from './lifeline.ts';
import { withServiceMalloc } from './malloc-env.ts';

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export type SupervisorEvent =
  | { type: 'line'; name: string; line: string; stream: 'stdout' | 'stderr' }
  | { type: 'started'; name: string; pid: number; attempt: number }
  | { type: 'exited'; name: string; code: number | null; signal: NodeJS.Signals | null; restartInMs?: number };

/** Where one supervised child stands now. Times are milliseconds since the epoch. */
export interface ChildStatus {
  name: string;
  /** running: a live process; backing-off: died, restarts at restartAt; stopped: stopAll. */
  state: 'running' | 'backing-off' | 'stopped';
  /** The live process, when running. */
  pid?: number;
  /** When the current (or last) run started. */
  startedAt: number;
  /** How many times it was started again after dying. */
  restarts: number;
  lastExit?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  /** While backing off: when it will be started again. */
  restartAt?: number;
  /** The wait before the next restart: the current one while backing off, else the one a death now would get. */
  backoffMs: number;
}

export interface SupervisorOptions {
  onEvent(e: SupervisorEvent): void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Up this long and the back-off resets. */
  stableMs?: number;
}

interface Slot {
  spec: ChildSpec;
  child?: ChildProcess;
  attempt: number;
  backoff: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
  lastExit?: ChildStatus['lastExit'];
  restartAt?: number;
  waitMs?: number;
}

export class Supervisor {
  private slots = new Map<string, Slot>();
  private stopping = false;
  private readonly opts: Required<SupervisorOptions>;

  constructor(opts: SupervisorOptions) {
    this.opts = { minBackoffMs: 500, maxBackoffMs: 30_000, stableMs: 60_000, ...opts };
  }

  start(spec: ChildSpec): void {
    if (this.slots.has(spec.name)) throw new Error(`${spec.name} is already supervised`);
    const slot: Slot = { spec, attempt: 0, backoff: this.opts.minBackoffMs, startedAt: 0 };
    this.slots.set(spec.name, slot);
    this.launch(slot);
  }

  pid(name: string): number | undefined {
    return this.slots.get(name)?.child?.pid;
  }

  /** Every supervised child, in the order they were started. */
  status(): ChildStatus[] {
    return [...this.slots.values()].map((slot) => {
      const running = slot.child?.pid !== undefined && slot.child.exitCode === null && slot.child.signalCode === null;
      const state: ChildStatus['state'] = running ? 'running' : this.stopping ? 'stopped' : 'backing-off';
      // A death now, after a stable run, would wait the minimum again.
      const nextWait = running && Date.now() - slot.startedAt > this.opts.stableMs ? this.opts.minBackoffMs : slot.backoff;
      return {
        name: slot.spec.name,
        state,
        ...(running ? { pid: slot.child!.pid } : {}),
        startedAt: slot.startedAt,
        restarts: Math.max(0, slot.attempt - 1),
        ...(slot.lastExit ? { lastExit: slot.lastExit } : {}),
        ...(state === 'backing-off' && slot.restartAt !== undefined ? { restartAt: slot.restartAt } : {}),
        backoffMs: state === 'backing-off' ? (slot.waitMs ?? slot.backoff) : nextWait,
      };
    });
  }

  private launch(slot: Slot): void {
    slot.attempt++;
    slot.startedAt = Date.now();
    slot.restartAt = undefined;
    slot.waitMs = undefined;
    // stdin is the lifeline: never written; it closes when this process dies.
    const env = { ...withServiceMalloc(slot.spec.env ?? process.env), [LIFELINE_ENV]: String(LIFELINE_FD) };
    const child = spawn(slot.spec.command, slot.spec.args, { env, cwd: slot.spec.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    slot.child = child;
    child.stdio[LIFELINE_FD]?.on('error', () => {}); // the child went first: nothing to do
    const name = slot.spec.name;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: child[stream]! });
      rl.on('line', (line) => this.opts.onEvent({ type: 'line', name, line, stream }));
    }
    child.on('error', (err) => {
      this.opts.onEvent({ type: 'line', name, line: JSON.stringify({ level: 'error', service: name, msg: `cannot start: ${err.message}` }), stream: 'stderr' });
    });
    if (child.pid !== undefined) this.opts.onEvent({ type: 'started', name, pid: child.pid, attempt: slot.attempt });
    child.on('exit', (code, signal) => {
      slot.child = undefined;
      // One reading for the exit and the restart time it sets: two could straddle a tick.
      const at = Date.now();
      slot.lastExit = { code, signal, at };
      child.stdio[LIFELINE_FD]?.destroy();
      if (this.stopping) {
        this.opts.onEvent({ type: 'exited', name, code, signal });
        return;
      }
      if (at - slot.startedAt > this.opts.stableMs) slot.backoff = this.opts.minBackoffMs;
      const wait = slot.backoff;
      slot.backoff = Math.min(slot.backoff * 2, this.opts.maxBackoffMs);
      slot.waitMs = wait;
      slot.restartAt = at + wait;
      this.opts.onEvent({ type: 'exited', name, code, signal, restartInMs: wait });
      slot.timer = setTimeout(() => this.launch(slot), wait);
    });
  }

  /** SIGTERM everyone, SIGKILL whoever is still there after graceMs. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      clearTimeout(slot.timer);
      const child = slot.child;
      if (!child || child.exitCode !== null) continue;
      waits.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(waits);
  }
}
