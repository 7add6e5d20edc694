/**
 * Long synchronous work (parsing and indexing a zone of a hundred thousand records) written
 * once as a generator that yields now and then, and run either at once (runSteps) or in
 * slices that give the event loop back every few milliseconds (runStepsAsync), so that a
 * server keeps answering from its current zones while it builds the next ones.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export type Steps<T> = Generator<void, T, void>;

/** Every how many items a loop yields: cheap enough to ignore, often enough to slice. */
export const STEP = 512;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs `steps`, letting other work in at least every `sliceMs` of it. */
export async function runStepsAsync<T>(steps: Steps<T>, sliceMs = 8): Promise<T> {
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - since >= sliceMs) {
      await nextTurn();
      since = performance.now();
    }
  }
}
