/**
 * Peak private memory (RssAnon, /proc/PID/status) of process trees, sampled while a
 * benchmark runs: the kernel keeps a peak only for the whole RSS (VmHWM), which counts the
 * binary's shared, file-backed pages too. A tree's figure is the sum over its live
 * processes at each sample (git http-backend forks upload-pack and pack-objects).
 */
import { readdirSync, readFileSync } from 'node:fs';

function rssAnonBytes(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // gone between listing and reading
  }
}

/** Every live process: its parent and its command name. */
function processTable(): Map<number, { ppid: number; comm: string }> {
  const out = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.set(Number(name), { ppid, comm });
    } catch {
      // gone
    }
  }
  return out;
}

export interface RssAnonSampler {
  /** Peak bytes seen per tree name. */
  peaks(): Record<string, number>;
  stop(): void;
}

/**
 * Samples every `ms`: each named tree is the processes under (and including) the roots
 * `select` picks from the process table.
 */
export function sampleRssAnon(trees: Record<string, (pid: number, p: { ppid: number; comm: string }) => boolean>, ms = 50): RssAnonSampler {
  const peak: Record<string, number> = Object.fromEntries(Object.keys(trees).map((k) => [k, 0]));
  const tick = () => {
    const table = processTable();
    const children = new Map<number, number[]>();
    for (const [pid, p] of table) {
      const l = children.get(p.ppid);
      if (l) l.push(pid);
      else children.set(p.ppid, [pid]);
    }
    for (const [name, select] of Object.entries(trees)) {
      let sum = 0;
      const seen = new Set<number>();
      const stack = [...table].filter(([pid, p]) => select(pid, p)).map(([pid]) => pid);
      while (stack.length) {
        const pid = stack.pop()!;
        if (seen.has(pid)) continue;
        seen.add(pid);
        sum += rssAnonBytes(pid);
        stack.push(...(children.get(pid) ?? []));
      }
      if (sum > peak[name]!) peak[name] = sum;
    }
  };
  const timer = setInterval(tick, ms);
  timer.unref();
  return { peaks: () => ({ ...peak }), stop: () => clearInterval(timer) };
}
