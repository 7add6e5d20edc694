/**
 * A V8 compile cache for a service bundle, made on the build host and shipped in the image:
 * under TCG, compiling the bundle's source is a good part of the service's start.
 *
 * Node 26 keeps a portable cache (keys relative to the cache folder, so /kith/cache in the
 * guest matches <root>/kith/cache here) and reads one read-only, which a sealed service
 * needs (it may not write there). The read-only lookup goes to a folder whose tag carries
 * the reading uid; rather than guess the tag, we ask Node (NODE_DEBUG_NATIVE=COMPILE_CACHE)
 * where it looks, move the cache there, and check that Node accepts it. Any surprise: no
 * cache, and the image boots as it would have.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealFlags } from '../seal.ts';
import { compileCacheEnv } from './plan.ts';

export interface CompileCacheJob {
  /** Host paths: the bundle and config inside the image root, and the cache folder to fill. */
  bundle: string;
  configDir: string;
  cacheDir: string;
  listeners: string[];
}

/** Run the sealed service until it says ready, then stop it; its stderr is returned. */
function runOnce(job: CompileCacheJob, env: Record<string, string>, writable: boolean): Promise<string> {
  const data = mkdtempSync(join(tmpdir(), 'kith-cc-'));
  const args = [
    ...sealFlags({ entry: job.bundle, configRoot: job.configDir, dataDir: data }),
    `--allow-fs-read=${job.cacheDir}`,
    ...(writable ? [`--allow-fs-write=${job.cacheDir}`] : []),
    job.bundle, '--config', job.configDir, '--data', data,
    ...job.listeners.flatMap((l) => ['--listen', `${l}=127.0.0.1:0`]),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stopping = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      // The runner takes SIGTERM gracefully (and Node writes the cache on that exit) only
      // once its handler is installed, just after it logs ready: give it a moment.
      if (!stopping && out.includes('"msg":"ready"')) {
        stopping = true;
        setTimeout(() => child.kill('SIGTERM'), 500);
      }
    });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      rmSync(data, { recursive: true, force: true });
      if (!out.includes('"msg":"ready"')) reject(new Error(`the service did not get ready: ${(err || out).slice(-500)}`));
      else resolve(err);
    });
  });
}

/** Fill job.cacheDir; returns what happened, in one line. Throws only on a bug, not on a refusal. */
export async function buildCompileCache(job: CompileCacheJob): Promise<{ ok: boolean; detail: string }> {
  rmSync(job.cacheDir, { recursive: true, force: true });
  mkdirSync(job.cacheDir, { recursive: true });
  const fail = (detail: string) => {
    rmSync(job.cacheDir, { recursive: true, force: true });
    return { ok: false, detail };
  };
  try {
    await runOnce(job, { NODE_COMPILE_CACHE: job.cacheDir, NODE_COMPILE_CACHE_PORTABLE: '1' }, true);
    const made = readdirSync(job.cacheDir);
    if (made.length !== 1) return fail(`expected one cache folder, found ${made.length}`);
    if (readdirSync(join(job.cacheDir, made[0]!)).length === 0) return fail('the service wrote no cache entry');
    const probe = { ...compileCacheEnv(job.cacheDir), NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };
    const where = /read-only cache directory (\S+?)\.\.\.(found|not found)/.exec(await runOnce(job, probe, false));
    if (!where) return fail('Node did not say where it reads a read-only cache');
    if (where[2] === 'not found') renameSync(join(job.cacheDir, made[0]!), where[1]!);
    const check = await runOnce(job, probe, false);
    if (!/V8 code cache for ESM \S+ was accepted/.test(check)) return fail(`Node did not accept the cache: ${check.split('\n').filter((l) => l.includes('compile cache')).slice(-2).join(' / ')}`);
    return { ok: true, detail: `accepted from ${where[1]!.slice(job.cacheDir.length + 1)}` };
  } catch (err) {
    return fail((err as Error).message);
  }
}
