import { afterEach, describe, expect, it, vi } from 'vitest';
import { Supervisor, type ChildStatus, type SupervisorEvent } from './supervisor.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Supervisor', () => {
  afterEach(() => { vi.restoreAllMocks(); }); // the clock of the first test, even when it fails

  it('reports the live pid, restarts, the last exit and the back-off of a child that keeps dying', async () => {
    // A clock that moves on at every reading, as a real one may between two: the exit's
    // time and the restart time it sets must come from one reading all the same.
    const realNow = Date.now;
    let ticks = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + ticks++);
    const events: SupervisorEvent[] = [];
    const sup = new Supervisor({ onEvent: (e) => events.push(e), minBackoffMs: 100, maxBackoffMs: 400, stableMs: 60_000 });
    const before = Date.now();
    // Dies after 150 ms with code 3, every time.
    sup.start({ name: 'flaky', command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(3), 150)'] });
    const first = sup.status()[0]!;
    expect(first).toMatchObject({ name: 'flaky', state: 'running', restarts: 0, backoffMs: 100 });
    expect(first.pid).toBe(sup.pid('flaky'));
    expect(first.startedAt).toBeGreaterThanOrEqual(before);

    // Catch it backing off after its second death: waiting 200 ms, restart time set.
    let waiting: ChildStatus | undefined;
    const end = Date.now() + 10_000;
    while (!waiting && Date.now() < end) {
      const s = sup.status()[0]!;
      if (s.state === 'backing-off' && s.restarts === 1) waiting = s;
      else await sleep(5);
    }
    expect(waiting).toBeDefined();
    expect(waiting!.pid).toBeUndefined();
    expect(waiting!.lastExit).toMatchObject({ code: 3, signal: null });
    expect(waiting!.backoffMs).toBe(200);
    expect(waiting!.restartAt! - waiting!.lastExit!.at).toBe(200);
    expect(events.filter((e) => e.type === 'exited').map((e) => e.type === 'exited' && e.restartInMs)).toEqual([100, 200]);

    await sup.stopAll(1000);
    const stopped = sup.status()[0]!;
    expect(stopped.state).toBe('stopped');
  });

  it('gives each child a lifeline on stdin that stays open while the supervisor lives', async () => {
    const lines: string[] = [];
    const sup = new Supervisor({ onEvent: (e) => { if (e.type === 'line') lines.push(e.line); } });
    // The child reports its lifeline variable, then waits for stdin to end.
    sup.start({ name: 'c', command: process.execPath, args: ['-e', "console.log('fd=' + process.env.KITH_LIFELINE_FD); process.stdin.on('end', () => console.log('eof')).resume()"] });
    const end = Date.now() + 15_000; // a deadline for a loaded machine's Node start
    while (lines.length === 0 && Date.now() < end) await sleep(10);
    await sleep(200);
    expect(lines).toEqual(['fd=0']); // open: no end-of-file while we live
    await sup.stopAll(1000);
  });
});
