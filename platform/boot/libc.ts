/**
 * libc through node:ffi — the handful of system calls PID 1 needs and Node does not offer:
 * mount(2), umount2(2), init_module(2), ioctl(2) on an AF_INET socket, sethostname(2), reboot(2),
 * sync(2), clock_settime(2).
 *
 * Each wrapper returns an errno value (0 on success) instead of throwing, so the boot
 * sequence decides what a failure means (EEXIST from init_module is fine, EBUSY on a
 * mount that is already there is fine). Bound lazily: importing this file on a machine
 * without node:ffi costs nothing until a call is made.
 */
import { createRequire } from 'node:module';

type Fn = (...args: unknown[]) => number | bigint;
interface Libc {
  mount: Fn; init_module: Fn; socket: Fn; ioctl: Fn; close: Fn; sethostname: Fn;
  reboot: Fn; sync: Fn; __errno_location: Fn; strerror: Fn; clock_settime: Fn; umount2: Fn;
}

let bound: { libc: Libc; toBuffer: (p: bigint, n: number) => Buffer; toString: (p: bigint) => string; getRawPointer: (b: Buffer) => bigint } | undefined;

function libc() {
  if (bound) return bound;
  // createRequire keeps esbuild from trying to resolve node:ffi at bundle time.
  const ffi = createRequire(import.meta.url)('node:ffi');
  const { functions } = ffi.dlopen('libc.so.6', {
    mount: { arguments: ['pointer', 'pointer', 'pointer', 'u64', 'pointer'], return: 'i32' },
    init_module: { arguments: ['pointer', 'u64', 'pointer'], return: 'i32' },
    socket: { arguments: ['i32', 'i32', 'i32'], return: 'i32' },
    // ioctl is variadic in C; on x86_64 and aarch64 Linux the third argument travels in
    // the same register as a fixed one, so a fixed three-argument signature is sound.
    ioctl: { arguments: ['i32', 'u64', 'pointer'], return: 'i32' },
    close: { arguments: ['i32'], return: 'i32' },
    sethostname: { arguments: ['pointer', 'u64'], return: 'i32' },
    reboot: { arguments: ['i32'], return: 'i32' },
    sync: { arguments: [], return: 'void' },
    clock_settime: { arguments: ['i32', 'pointer'], return: 'i32' },
    umount2: { arguments: ['pointer', 'i32'], return: 'i32' },
    __errno_location: { arguments: [], return: 'pointer' },
    strerror: { arguments: ['i32'], return: 'pointer' },
  });
  bound = { libc: functions as Libc, toBuffer: ffi.toBuffer, toString: ffi.toString, getRawPointer: ffi.getRawPointer };
  return bound;
}

function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

/** Read errno right after a failed call (nothing runs in between on this thread). */
function check(ret: number | bigint): number {
  if (Number(ret) !== -1) return 0;
  const b = libc();
  return b.toBuffer(b.libc.__errno_location() as bigint, 4).readInt32LE(0);
}

export function strerror(errno: number): string {
  const b = libc();
  return b.toString(b.libc.strerror(errno) as bigint);
}

export const EEXIST = 17;
export const EBUSY = 16;
export const ENOENT = 2;

/** mount(2) flags from <sys/mount.h>. */
export const MS_NOATIME = 1024n;
/** Directory changes (create, rename, unlink) are synchronous. */
export const MS_DIRSYNC = 128n;

export function mount(source: string, target: string, fstype: string, flags = 0n, data = ''): number {
  return check(libc().libc.mount(cstr(source), cstr(target), cstr(fstype), flags, cstr(data)));
}

export function umount(target: string, flags = 0): number {
  return check(libc().libc.umount2(cstr(target), flags));
}

/** mount(2) flags: read-only; writes synchronous. */
export const MS_RDONLY = 1n;
export const MS_SYNCHRONOUS = 16n;

export const CLOCK_REALTIME = 0;

/** Set the system clock (clock_settime(2), CLOCK_REALTIME) to Unix milliseconds. */
export function setClock(unixMs: number): number {
  const ts = Buffer.alloc(16); // struct timespec on 64-bit Linux: time_t tv_sec, long tv_nsec
  const sec = Math.floor(unixMs / 1000);
  ts.writeBigInt64LE(BigInt(sec), 0);
  ts.writeBigInt64LE(BigInt(Math.floor((unixMs - sec * 1000) * 1e6)), 8);
  return check(libc().libc.clock_settime(CLOCK_REALTIME, ts));
}

export function initModule(image: Buffer, params = ''): number {
  return check(libc().libc.init_module(image, BigInt(image.length), cstr(params)));
}

export const AF_INET = 2;
export const SOCK_DGRAM = 2;

export function socket(domain: number, type: number, protocol: number): { fd: number; errno: number } {
  const fd = Number(libc().libc.socket(domain, type, protocol));
  return { fd, errno: fd < 0 ? check(-1) : 0 };
}

export function ioctl(fd: number, request: number, arg: Buffer): number {
  return check(libc().libc.ioctl(fd, BigInt(request), arg));
}

export function close(fd: number): number {
  return check(libc().libc.close(fd));
}

export function sethostname(name: string): number {
  const b = Buffer.from(name, 'utf8');
  return check(libc().libc.sethostname(b, BigInt(b.length)));
}

export function sync(): void {
  libc().libc.sync();
}

/** reboot(2) commands from <sys/reboot.h>. */
export const RB_AUTOBOOT = 0x01234567;
export const RB_POWER_OFF = 0x4321fedc;

export function reboot(cmd: number): number {
  return check(libc().libc.reboot(cmd));
}

/** Address of a Buffer's bytes, for structures that hold pointers (rtentry.rt_dev). Keep `b` alive. */
export function pointerOf(b: Buffer): bigint {
  return libc().getRawPointer(b);
}
