import { describe, expect, it, vi } from 'vitest';
import { governMemory, heapAndBuffers, memoryCheckpoint, type GcFunction } from './memory-governor.ts';

const MiB = 2 ** 20;

/** A fake heap: usage the test sets, and a gc that drops it to what is live. */
function fakeHeap(live: number) {
  const heap = { used: live, live, calls: [] as Parameters<GcFunction>[0][] };
  const gc: GcFunction = (o) => {
    heap.calls.push(o);
    heap.used = heap.live;
  };
  return { heap, gc, usage: () => heap.used };
}

describe('memory governor', () => {
  it('collects when heap and Buffers pass the soft limit, and not below it', () => {
    vi.useFakeTimers();
    try {
      const { heap, gc, usage } = fakeHeap(10 * MiB);
      const seen: string[] = [];
      const g = governMemory({ softLimitBytes: 24 * MiB, gc, usage, onCollect: (why, before, after) => seen.push(`${why} ${before / MiB}->${after / MiB}`) });
      vi.advanceTimersByTime(1000);
      expect(heap.calls).toHaveLength(0);
      heap.used = 30 * MiB; // garbage piled up
      vi.advanceTimersByTime(100);
      expect(seen).toEqual(['limit 30->10']);
      expect(heap.calls[0]).toEqual({ type: 'major', execution: 'sync' });
      g.stop();
      heap.used = 90 * MiB;
      vi.advanceTimersByTime(1000);
      expect(seen).toHaveLength(1); // stopped
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not collect over and over when what is live is above the limit', () => {
    vi.useFakeTimers();
    try {
      const { heap, gc, usage } = fakeHeap(40 * MiB);
      heap.used = 41 * MiB;
      const g = governMemory({ softLimitBytes: 24 * MiB, gc, usage });
      vi.advanceTimersByTime(100);
      expect(heap.calls).toHaveLength(1);
      heap.used = 45 * MiB; // within 1.25x of the 40 live: no collection
      vi.advanceTimersByTime(1000);
      expect(heap.calls).toHaveLength(1);
      heap.used = 51 * MiB; // past it
      vi.advanceTimersByTime(100);
      expect(heap.calls).toHaveLength(2);
      // Back under the soft limit: the threshold returns to it.
      heap.live = 5 * MiB;
      heap.used = 5 * MiB;
      vi.advanceTimersByTime(100);
      heap.used = 26 * MiB;
      vi.advanceTimersByTime(100);
      expect(heap.calls).toHaveLength(3);
      g.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('settle() collects everything once, after a quiet moment; a second settle() restarts the wait', () => {
    vi.useFakeTimers();
    try {
      const { heap, gc, usage } = fakeHeap(5 * MiB);
      const g = governMemory({ softLimitBytes: 1000 * MiB, gc, usage, settleAfterMs: 250 });
      g.settle();
      vi.advanceTimersByTime(200);
      g.settle();
      vi.advanceTimersByTime(200);
      expect(heap.calls).toHaveLength(0);
      vi.advanceTimersByTime(100);
      expect(heap.calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
      g.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('memoryCheckpoint() checks from inside a loop that never yields to the timer, every 64th call', () => {
    const { heap, gc, usage } = fakeHeap(10 * MiB);
    const g = governMemory({ softLimitBytes: 24 * MiB, gc, usage, checkEveryMs: 60_000 });
    heap.used = 30 * MiB;
    for (let i = 0; i < 63; i++) memoryCheckpoint();
    const before = heap.calls.length;
    for (let i = 0; i < 64; i++) memoryCheckpoint();
    expect(heap.calls.length).toBe(before + 1);
    g.stop();
    heap.used = 30 * MiB;
    for (let i = 0; i < 200; i++) memoryCheckpoint();
    expect(heap.calls.length).toBe(before + 1); // no governor, nothing checked
  });

  it('memoryCheckpoint(bytes) checks once 2 MiB have gone through, before the 64th call', () => {
    const { heap, gc, usage } = fakeHeap(10 * MiB);
    const g = governMemory({ softLimitBytes: 24 * MiB, gc, usage, checkEveryMs: 60_000 });
    memoryCheckpoint(2 * MiB); // whatever earlier calls left counted, this one checks
    heap.used = 30 * MiB;
    const before = heap.calls.length;
    memoryCheckpoint(MiB);
    expect(heap.calls.length).toBe(before); // 1 MiB, one call: not yet
    memoryCheckpoint(MiB);
    expect(heap.calls.length).toBe(before + 1); // 2 MiB in two calls (a 1 MiB pack piece each)
    g.stop();
  });

  it('does nothing without an exposed gc', () => {
    const had = (globalThis as { gc?: unknown }).gc;
    delete (globalThis as { gc?: unknown }).gc;
    try {
      const g = governMemory({ softLimitBytes: 1 });
      g.settle();
      g.stop();
    } finally {
      if (had) (globalThis as { gc?: unknown }).gc = had;
    }
    expect(heapAndBuffers()).toBeGreaterThan(MiB);
  });
});
