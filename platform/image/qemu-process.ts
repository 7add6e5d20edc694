/**
 * A qemu process seen through its serial console: everything it prints is kept, a test or
 * benchmark waits for a line to appear, and stop() ends it (SIGTERM, then SIGKILL).
 * Shared by the kvm and rpi runners.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface QemuProcess {
  child: ChildProcess;
  /** All console output so far. */
  output(): string;
  /**
   * Resolve with the console output up to its last complete line once that matches `re`;
   * reject on timeout or exit. Only whole lines are matched: output arrives in chunks, and
   * a pattern ending in `\S+` would otherwise match half a value (`now=2` of a timestamp).
   */
  waitFor(re: RegExp, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

export function startQemuProcess(binary: string, args: string[], echo?: NodeJS.WritableStream): QemuProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    buf += d.toString('utf8');
    echo?.write(d);
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.on('exit', () => { for (const w of [...waiters]) w(); });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => buf,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const lines = buf.slice(0, buf.lastIndexOf('\n') + 1);
          if (re.test(lines)) { cleanup(); resolve(lines); }
          else if (gone()) { cleanup(); reject(new Error(`qemu exited (${child.exitCode ?? child.signalCode}) before ${re}:\n${buf.slice(-3000)}`)); }
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}:\n${buf.slice(-3000)}`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    stop() {
      return new Promise((resolve) => {
        if (gone()) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}
