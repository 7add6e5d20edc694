/**
 * Ending a daemon a test started in its own network namespace (chronyd, dnsmasq), where
 * only its pid file says which process it is. Waiting for it to be gone matters: both write
 * their state files as they stop, and a folder removed meanwhile fails with ENOTEMPTY.
 */
import { readFileSync } from 'node:fs';

/** SIGTERM the pid in `file` and wait (at most `timeoutMs`) until it is gone. No file, no process: nothing to do. */
export async function stopByPidFile(file: string, timeoutMs = 10_000): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return; // never started
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (const until = Date.now() + timeoutMs; alive() && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
}
