/**
 * Processes by pid: is one alive, what is its command line, and stopping the ones an
 * earlier supervisor left behind.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Is a process alive? kill(pid, 0) asks without signalling: ESRCH means gone, EPERM means
 * alive but someone else's. A zombie (exited, not yet reaped) counts as gone. Undefined
 * when it cannot tell (not a valid pid, another error). Callers decide what their own pid
 * means (a live writer, or an earlier life of it).
 */
export function processAlive(pid: number): boolean | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return !zombie(pid);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ESRCH') return false;
    return code === 'EPERM' ? true : undefined;
  }
}

/** Exited but not yet reaped by its parent (Linux /proc; false where that cannot be read). */
function zombie(pid: number): boolean {
  try {
    // The state follows the command name, which is in parentheses and may hold anything.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/**
 * The children of `pid`, every thread's, from /proc (Linux): running ones and zombies its
 * parent has not reaped yet; [] when it is gone or /proc cannot tell.
 */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** A process's arguments, from /proc (Linux); undefined when it is gone or unreadable. */
export function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return undefined;
  }
}

const containsRun = (argv: string[], run: string[]) => argv.some((_, i) => run.every((r, j) => argv[i + j] === r));

/** The candidates that are alive and still carry their marker (see stopStrays). */
export function findStrays(candidates: { pid: number; marker: string[] }[]): number[] {
  return candidates.filter((c) => c.pid !== process.pid && processAlive(c.pid) === true && containsRun(commandLine(c.pid) ?? [], c.marker)).map((c) => c.pid);
}

/**
 * Stop processes an earlier supervisor left running: each pid that is alive AND whose
 * command line still contains `marker` (consecutive arguments, e.g. ['--data', DIR]), so a
 * pid the kernel has since given to another program is never touched. SIGTERM, then
 * SIGKILL after graceMs. Returns the pids that were signalled.
 */
export async function stopStrays(candidates: { pid: number; marker: string[] }[], graceMs = 3000): Promise<number[]> {
  const ours = findStrays(candidates);
  const signal = (pid: number, sig: NodeJS.Signals) => { try { process.kill(pid, sig); } catch { /* already gone */ } };
  for (const pid of ours) signal(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (ours.some((p) => processAlive(p) === true) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  for (const pid of ours) if (processAlive(pid) === true) signal(pid, 'SIGKILL');
  const killedBy = Date.now() + 2000;
  while (ours.some((p) => processAlive(p) === true) && Date.now() < killedBy) await new Promise((r) => setTimeout(r, 25));
  return ours;
}
