/** `kith image build --target kvm` and `kith vm run` as a test drives them: built, started with its output gathered, stopped as Ctrl-C would. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface RunningVm {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** The host port `kith vm run` printed for a listener (`pattern` captures it), within 60 s. */
  port(pattern: RegExp): Promise<number>;
}

export function startVm(repo: string, args: string[]): RunningVm {
  const child = spawn(process.execPath, [join(repo, 'installer/kith.ts'), 'vm', 'run', ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  child.stderr!.on('data', (d: Buffer) => { out += d; });
  return {
    child,
    output: () => out,
    async port(pattern) {
      const t0 = Date.now();
      while (Date.now() - t0 < 60_000) {
        if (child.exitCode !== null) throw new Error(`kith vm run exited:\n${out}`);
        const port = Number(pattern.exec(out)?.[1] ?? 0);
        if (port) return port;
        await new Promise((r) => setTimeout(r, 100));
      }
      return 0;
    },
  };
}

/** SIGTERM (what `kith vm run` takes as Ctrl-C) and the exit code; null when it was not running. */
export async function stopVm(vm: ChildProcess | undefined): Promise<number | null> {
  if (!vm || vm.exitCode !== null || vm.signalCode !== null) return vm?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => vm.once('exit', r));
  vm.kill('SIGTERM');
  return exited;
}

/** `kith image build --target kvm --service SERVICE --config CONFIG --out OUT [extra]`: its output; throws with it when the build fails. */
export function buildVmImage(repo: string, service: string, config: string, out: string, extra: string[] = []): string {
  const r = spawnSync(process.execPath, [join(repo, 'installer/kith.ts'), 'image', 'build', '--target', 'kvm', '--service', service, '--config', config, '--out', out, ...extra], { encoding: 'utf8', cwd: repo });
  const output = r.stdout + r.stderr;
  if (r.status !== 0) throw new Error(`kith image build exited ${r.status}:\n${output}`);
  return output;
}
