/**
 * Forgetting what was just written, so a read-back reads the card and not the kernel's
 * page cache: posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) after fdatasync (what `dd
 * iflag=nocache` does). Without it, verification of a fake or failing card would compare
 * the written bytes with themselves, from memory. Through node:ffi, bound on first use;
 * where node:ffi or libc is missing the answer says so and the read-back still runs.
 */
import { createRequire } from 'node:module';

const POSIX_FADV_DONTNEED = 4; // <fcntl.h>, the same on x86_64 and aarch64 Linux

let fadvise: ((fd: number, offset: bigint, len: bigint, advice: number) => number) | null | undefined;

function bind(): typeof fadvise {
  if (fadvise !== undefined) return fadvise;
  try {
    // createRequire keeps esbuild from resolving node:ffi at bundle time.
    const ffi = createRequire(import.meta.url)('node:ffi');
    const { functions } = ffi.dlopen('libc.so.6', { posix_fadvise: { arguments: ['i32', 'i64', 'i64', 'i32'], return: 'i32' } });
    fadvise = (fd, offset, len, advice) => Number(functions.posix_fadvise(fd, offset, len, advice));
  } catch {
    fadvise = null;
  }
  return fadvise;
}

/** Drop the clean cached pages of an open file or device (flush it first). 0, or an errno; -1 without node:ffi. */
export function dropCachedPages(fd: number): number {
  const f = bind();
  return f ? f(fd, 0n, 0n, POSIX_FADV_DONTNEED) : -1;
}
