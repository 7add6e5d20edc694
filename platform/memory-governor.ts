/**
 * A soft limit on a service's memory, kept by asking V8 to collect garbage (issue 16).
 *
 * V8 sizes its heap for speed: a major GC comes only when the old generation has grown by a
 * factor since the last one, and garbage Buffers (packs, bodies) count only once 64 MiB of
 * them have piled up; pages a GC frees stay in V8's pool for 8 s. A service that handles a
 * large request therefore holds tens of MiB of garbage at its peak and for seconds after —
 * bench/storage measured 70–100 MiB private against ~20 MiB live. Like Go's GOMEMLIMIT, this
 * checks what the heap and the Buffers take every `checkEveryMs` and runs a major GC when
 * that passes the soft limit; `settle()` (heavy work just ended, or the service just became
 * ready) runs a last-resort GC once things are quiet, which also hands the page pool back.
 *
 * Needs `--expose-gc` (platform/seal.ts gives it to every sealed service); without it this
 * does nothing.
 */
import { getHeapStatistics } from 'node:v8';

/** Node's `gc` under --expose-gc (Node ≥ 22 takes these options). */
export type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => unknown;

export interface MemoryGovernorOptions {
  /** Heap plus Buffers above which a major GC runs, bytes. */
  softLimitBytes: number;
  /** How often the usage is read (default 100 ms). */
  checkEveryMs?: number;
  /** How long `settle()` waits for quiet before collecting (default 250 ms; a new settle() restarts the wait). */
  settleAfterMs?: number;
  /** Default: globalThis.gc. */
  gc?: GcFunction;
  /** Bytes the limit is about. Default: V8's physical heap size plus its external memory (Buffers). */
  usage?: () => number;
  /** Called after each collection: why, and the usage before and after. */
  onCollect?: (why: 'limit' | 'settle', before: number, after: number) => void;
}

export interface MemoryGovernor {
  /** Heavy work ended (or start-up did): collect everything once things are quiet. */
  settle(): void;
  stop(): void;
}

const OFF: MemoryGovernor = { settle() {}, stop() {} };

/** The running governor's check, for memoryCheckpoint(): one per process, like gc itself. */
let activeCheck: (() => void) | undefined;
let sinceCheck = 0;
let bytesSinceCheck = 0;
/** A checkpoint checks after this many calls, or after this many bytes handled, whichever comes first. */
const CHECK_CALLS = 64;
const CHECK_BYTES = 2 << 20;

/**
 * For loops that handle thousands of objects without yielding to the event loop (a delta
 * chain resolved from cached bodies is all microtasks, so the governor's timer never fires
 * until it ends), or that stream faster than the timer ticks: every 64th call, or once
 * `bytes` (what the caller just allocated, e.g. a chunk read) add up to 2 MiB, reads the
 * usage and collects past the limit, as the timer would. Costs ~1.3 µs per check; nothing
 * when no governor runs.
 */
export function memoryCheckpoint(bytes = 0): void {
  if (activeCheck === undefined) return;
  bytesSinceCheck += bytes;
  if (++sinceCheck < CHECK_CALLS && bytesSinceCheck < CHECK_BYTES) return;
  sinceCheck = 0;
  bytesSinceCheck = 0;
  activeCheck();
}

/** V8's physical heap size plus its external memory (Buffers' backing stores). */
export function heapAndBuffers(): number {
  const h = getHeapStatistics();
  return h.total_physical_size + h.external_memory;
}

export function governMemory(o: MemoryGovernorOptions): MemoryGovernor {
  const gc = o.gc ?? (globalThis as { gc?: GcFunction }).gc;
  if (typeof gc !== 'function') return OFF;
  const usage = o.usage ?? heapAndBuffers;
  // When what is live is itself above the limit, collecting again at once would only burn
  // CPU: the threshold moves above what the last collection left, and back as usage falls.
  let threshold = o.softLimitBytes;
  const collect = (why: 'limit' | 'settle') => {
    const before = usage();
    gc(why === 'settle' ? { type: 'major', execution: 'sync', flavor: 'last-resort' } : { type: 'major', execution: 'sync' });
    const after = usage();
    threshold = Math.max(o.softLimitBytes, Math.round(after * 1.25));
    o.onCollect?.(why, before, after);
  };
  const check = () => {
    const now = usage();
    if (now > threshold) collect('limit');
    else if (now < o.softLimitBytes) threshold = o.softLimitBytes;
  };
  const timer = setInterval(check, o.checkEveryMs ?? 100);
  timer.unref();
  activeCheck = check;
  let settling: NodeJS.Timeout | undefined;
  return {
    settle() {
      if (settling) clearTimeout(settling);
      settling = setTimeout(() => { settling = undefined; collect('settle'); }, o.settleAfterMs ?? 250);
      settling.unref();
    },
    stop() {
      clearInterval(timer);
      if (activeCheck === check) activeCheck = undefined;
      if (settling) clearTimeout(settling);
    },
  };
}
