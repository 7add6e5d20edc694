/**
 * Inflating one whole zlib stream whose inflated size is known (a pack entry's header says
 * it), through one zlib engine reused for every call.
 *
 * Why not zlib.inflateSync or `new Inflate()` per object: each engine is a native object
 * whose zlib state (~7 KB of malloc, besides its 32 KB window) lives until V8 collects the
 * engine, close() or not. A push of bench/storage's 15,000 objects held ~100 MB of them in
 * address space at once and left glibc's main heap 11–13 MiB larger for good (freed chunks
 * below the few that stayed live; found with an LD_PRELOAD malloc tracer, issue 16). One
 * engine, reset before each stream, allocates nothing per call but the output; it is also
 * ~5× faster (15,000 small streams: 19 ms against 95 ms).
 *
 * This drives the engine's native handle (`_handle.writeSync`, `_writeState`), as Node's own
 * zlib.inflateSync does inside; inflater.test.ts pins the behaviour, so a Node upgrade that
 * changes those internals fails there.
 */
import { constants as Z, Inflate } from 'node:zlib';

interface ZlibHandle {
  reset(): void;
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  close(): void;
  onerror: (message: string, errno: number, code?: string) => void;
}
type Engine = Inflate & { _handle: ZlibHandle; _writeState: Uint32Array };

let engine: Engine | undefined;
type Failure = { message: string; errno: number; code?: string };
let failure: Failure | undefined;

function ready(): Engine {
  if (engine) return engine;
  const e = new Inflate() as Engine;
  // Errors are recorded and thrown by inflateKnown; Node's own handler would destroy the engine and emit 'error' later.
  e._handle.onerror = (message, errno, code) => { failure = { message, errno, code }; };
  e.on('error', () => {});
  engine = e;
  return e;
}

/**
 * Inflate the zlib stream at the front of `input` (bytes after its end are ignored) into
 * exactly `size` bytes. Returns them and how many input bytes the stream took. Throws when
 * the stream is bad or inflates to more or fewer bytes than `size`; an error whose code is
 * 'Z_BUF_ERROR' when `input` ends before the stream does.
 */
export function inflateKnown(input: Buffer, size: number): { buffer: Buffer; consumed: number } {
  const e = ready();
  // One byte more than declared: output that fills it is more than the header says.
  const out = Buffer.allocUnsafe(size + 1);
  failure = undefined;
  e._handle.reset();
  e._handle.writeSync(Z.Z_FINISH, input, 0, input.length, out, 0, out.length);
  const f = failure as Failure | undefined; // set by onerror during writeSync
  if (f) {
    failure = undefined;
    // Whatever state a bad stream left, the next call starts from a fresh engine.
    engine = undefined;
    e._handle.close();
    throw Object.assign(new Error(f.message), { errno: f.errno, code: f.code });
  }
  const [availOut, availIn] = e._writeState;
  const produced = out.length - availOut!;
  if (produced !== size) throw Object.assign(new Error(`inflates to ${produced > size ? `more than ${size}` : produced} bytes, its header says ${size}`), { code: 'KITH_SIZE_MISMATCH' });
  return { buffer: out.subarray(0, size), consumed: input.length - availIn! };
}
