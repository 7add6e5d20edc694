/**
 * The lifeline: a service dies with its supervisor, however the supervisor ends.
 *
 * The supervisor gives each child a socket as its stdin (KITH_LIFELINE_FD=0 says so) and
 * never writes to it. When the supervisor exits — cleanly, by SIGKILL, or by a crash — the
 * kernel closes its end and the child reads end-of-file, and stops. A pipe rather than
 * PR_SET_PDEATHSIG: it needs no FFI (refused under the permission model every service
 * runs in), and it fires on the supervisor's death rather than on the death of the thread
 * that forked the child. stdin and not an extra descriptor: the sealing re-exec
 * (process.execve) keeps only 0–2 open, and a service reads nothing from stdin.
 */
import { Socket } from 'node:net';

export const LIFELINE_ENV = 'KITH_LIFELINE_FD';
/** The child's descriptor for the lifeline: its stdin. */
export const LIFELINE_FD = 0;

/**
 * In a child: call `onGone` once when the supervisor is gone. Returns false when no
 * lifeline was given (started by hand, by a test, or by an older supervisor).
 */
export function watchLifeline(onGone: (why: string) => void, env: NodeJS.ProcessEnv = process.env): boolean {
  const fd = Number(env[LIFELINE_ENV]);
  if (!Number.isInteger(fd) || fd < 0 || env[LIFELINE_ENV] === '') return false;
  let sock: Socket;
  try {
    sock = new Socket({ fd, readable: true, writable: false });
  } catch {
    return false;
  }
  let fired = false;
  const gone = (why: string) => {
    if (fired) return;
    fired = true;
    onGone(why);
  };
  // Nothing is ever sent; anything that is is ignored.
  sock.on('data', () => {});
  sock.on('end', () => gone('the supervisor is gone (lifeline closed)'));
  sock.on('error', (err) => gone(`the supervisor is gone (lifeline: ${err.message})`));
  // The lifeline alone must not keep a stopping service alive.
  sock.unref();
  return true;
}
