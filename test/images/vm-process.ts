/** `kith vm run` as a child of a test: stopped as Ctrl-C would, and its exit code awaited. */
import type { ChildProcess } from 'node:child_process';

/** SIGTERM (what `kith vm run` takes as Ctrl-C) and the exit code; null when it was not running. */
export async function stopVm(vm: ChildProcess | undefined): Promise<number | null> {
  if (!vm || vm.exitCode !== null || vm.signalCode !== null) return vm?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => vm.once('exit', r));
  vm.kill('SIGTERM');
  return exited;
}
