/** Small statistics the benchmarks share. */

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Which of `starts` fresh process starts round `r` of `rounds` belongs to: the rounds split
 * evenly, in order (bench/dns: a process keeps its own speed for its life); `starts` is a
 * whole number from 1 to `rounds` (badStarts).
 */
export function startOfRound(r: number, rounds: number, starts: number): number {
  return Math.floor((r * starts) / rounds);
}

/** Whether round `r` is the first of a new start (never round 0: the first start is made before the rounds). */
export function newStartAt(r: number, rounds: number, starts: number): boolean {
  return r > 0 && startOfRound(r, rounds, starts) !== startOfRound(r - 1, rounds, starts);
}

/** Why `starts` cannot split `rounds`, or undefined when it can. */
export function badStarts(starts: number, rounds: number): string | undefined {
  return Number.isInteger(starts) && starts >= 1 && starts <= rounds ? undefined : '--instances must be a whole number from 1 to --rounds';
}
