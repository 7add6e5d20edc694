/**
 * Supervise service processes: start each, read its JSON log lines, restart one that dies
 * (exponential back-off, reset after a stable minute) without touching the others, stop
 * all cleanly. Used by `kith up` on a workstation and by PID 1 on the appliance.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

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

  private launch(slot: Slot): void {
    slot.attempt++;
    slot.startedAt = Date.now();
    const child = spawn(slot.spec.command, slot.spec.args, { env: slot.spec.env ?? process.env, cwd: slot.spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    slot.child = child;
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
      if (this.stopping) {
        this.opts.onEvent({ type: 'exited', name, code, signal });
        return;
      }
      if (Date.now() - slot.startedAt > this.opts.stableMs) slot.backoff = this.opts.minBackoffMs;
      const wait = slot.backoff;
      slot.backoff = Math.min(slot.backoff * 2, this.opts.maxBackoffMs);
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
