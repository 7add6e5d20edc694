/** Shared helpers for platform tests: temp folders and a bundled service process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { withServiceMalloc } from '../../platform/malloc-env.ts';

export function tempDir(prefix = 'kith-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface ServiceProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  ready: { endpoints: Record<string, string>; health: string };
  /** Resolves with the first log line matching `pred` (past or future). */
  waitFor(pred: (rec: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

/**
 * Start `node BUNDLE args...` and wait for its 'ready' log line. `prefix` runs it under
 * another command that execs it (e.g. `unshare -rm sh -c '…; exec "$@"' sh`). `serviceEnv`
 * is the service's own declared environment (`env` in its definition), as the supervisor
 * applies it.
 */
export async function startBundle(bundle: string, args: string[], timeoutMs = 20_000, prefix: string[] = [], serviceEnv: Record<string, string> = {}): Promise<ServiceProcess> {
  const argv = [...prefix, process.execPath, bundle, ...args];
  // The malloc settings the supervisor gives every service (platform/malloc-env.ts), so benches measure what runs.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: withServiceMalloc({ ...process.env, ...serviceEnv }) });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (r: Record<string, unknown>) => boolean; resolve: (r: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let rec: Record<string, unknown>;
    try { rec = JSON.parse(line); } catch { rec = { raw: line }; }
    lines.push(rec);
    for (const w of [...waiters]) if (w.pred(rec)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(rec); }
  });
  const waitFor = (pred: (r: Record<string, unknown>) => boolean, ms = timeoutMs) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const found = lines.find(pred);
      if (found) return resolve(found);
      const t = setTimeout(() => reject(new Error(`timed out waiting for a log line; stderr: ${stderr}\nlines: ${JSON.stringify(lines.slice(-10))}`)), ms);
      waiters.push({ pred, resolve: (r) => { clearTimeout(t); resolve(r); } });
      child.once('exit', (code) => { clearTimeout(t); reject(new Error(`service exited with ${code}; stderr: ${stderr}\nlines: ${JSON.stringify(lines.slice(-10))}`)); });
    });
  const ready = (await waitFor((r) => r.msg === 'ready')) as unknown as ServiceProcess['ready'];
  return {
    child,
    lines,
    ready,
    waitFor,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    }),
  };
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

export async function writeConfig(root: string, rel: string, text: string): Promise<void> {
  await fsp.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await fsp.writeFile(path.join(root, rel), text);
}
