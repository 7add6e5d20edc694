/**
 * glibc malloc settings for every service process. Node's own allocations (zlib engines,
 * Buffers' backing stores, TLS) go through malloc; by default glibc keeps up to 8 arenas
 * per core and raises its mmap threshold after each large free, so memory freed after a
 * push or a clone stays in the process. Measured with storage pushing and cloning a
 * 2,000-commit, 15 MiB-pack repository (peak RssAnon, MiB, two runs each):
 * default 73-75 push / 79-83 clone; these settings 62-64 push / 68-73 clone.
 *
 * The threshold is 32 KiB, not 64: V8's compiler allocates its zone memory in segments
 * below 64 KiB, and compiling a bundle at start left them as holes glibc's main heap never
 * gave back — mail's bundle held 15 MiB there after loading (RssAnon 33.7 MiB just from
 * importing it), 3.9 MiB at 32 KiB (22.6 MiB); dns 23.3 → 20.4, storage 29.6 → 24.8
 * (bench/storage, same run: push and clone ratios unchanged, peak RssAnon 65.9 against
 * 86.6). A value the environment already sets wins (a user's own tuning).
 */
export const SERVICE_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '32768',
};

/**
 * `env` with the service malloc settings under it. An empty value in `env` unsets that
 * variable: a service that wants glibc's own default (DNS: Node receives each UDP batch into
 * a fresh 64 KiB buffer, which a fixed threshold turns into an mmap and a munmap per batch).
 */
export function withServiceMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...SERVICE_MALLOC_ENV, ...env };
  for (const [k, v] of Object.entries(out)) if (v === '') delete out[k];
  return out;
}
