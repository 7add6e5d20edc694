/**
 * Is a process alive? kill(pid, 0) asks without signalling: ESRCH means gone, EPERM means
 * alive but someone else's. Undefined when it cannot tell (not a valid pid, another error).
 * Callers decide what their own pid means (a live writer, or an earlier life of it).
 */
export function processAlive(pid: number): boolean | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ESRCH') return false;
    return code === 'EPERM' ? true : undefined;
  }
}
