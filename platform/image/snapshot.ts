/**
 * A V8 startup snapshot of a service, made on the build host and shipped in a kvm image:
 * under TCG, compiling and evaluating the bundle's modules was the largest part of the
 * service's start (about 2 s of 3.5). From a snapshot, Node deserializes the heap with
 * every module already evaluated and calls the service's main function.
 *
 * The snapshot is built by the image's own Node binary (a blob only loads in the Node that
 * made it, so the host must run x86_64 and the same version), with the sealing flags the
 * service runs with (less --permission, see BUILD_FLAGS), so what the bundle decides while
 * loading (can it generate code?) holds at run time too. Built-ins stay out of the snapshot
 * (platform/build/bundle.ts lazyBuiltins). The build then starts the sealed service from
 * the blob on loopback and waits for ready: a snapshot that does not start fails the build.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleSnapshotEntry } from '../build/bundle.ts';
import { launchArgs } from '../appliance.ts';

export interface SnapshotJob {
  /** The Node binary that will run the service (the image's). */
  node: string;
  /** The service's main.ts. */
  entry: string;
  /** Where to write the blob. */
  blob: string;
  /** Host paths of the service's ESM bundle and config inside the image root. */
  bundle: string;
  configDir: string;
  /** The bundle's path in the guest: what the service reports as its entry. */
  guestBundle: string;
  listeners: string[];
}

/**
 * Sealing flags that change what a bundle sees while it loads: the snapshot is built under
 * them. Not --permission: Node defines process.permission again when the snapshot starts,
 * and cannot if the snapshot has it already; modules decide about it at first use instead.
 */
// --expose-gc too: V8 refuses a snapshot built under other flags, and `gc` lives on the global object it restores.
const BUILD_FLAGS = ['--frozen-intrinsics', '--disallow-code-generation-from-strings', '--expose-gc', '--disable-warning=ExperimentalWarning'];

/** Start the sealed service from the blob on loopback, wait for ready, stop it; its ready line. */
function startOnce(job: SnapshotJob): Promise<string> {
  const data = mkdtempSync(join(tmpdir(), 'kith-snap-run-'));
  const args = launchArgs({
    bundle: job.bundle, configRoot: job.configDir, dataDir: data, sealed: true, snapshotBlob: job.blob,
    listen: Object.fromEntries(job.listeners.map((l) => [l, { host: '127.0.0.1', port: 0 }])),
  });
  return new Promise((resolve, reject) => {
    const child = spawn(job.node, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (child.exitCode === null && !child.killed && out.includes('"msg":"ready"')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      rmSync(data, { recursive: true, force: true });
      const ready = out.split('\n').find((l) => l.includes('"msg":"ready"'));
      if (ready) resolve(ready);
      else reject(new Error(`the service did not start from its snapshot with the image's config (${job.configDir}); its last words: ${(err || out).trim().slice(-600)}`));
    });
  });
}

/** Build and check job.blob; returns a one-line report. Throws with the reason when it cannot. */
export async function buildServiceSnapshot(job: SnapshotJob): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'kith-snap-'));
  try {
    const script = join(work, 'entry.cjs');
    await bundleSnapshotEntry(job.entry, script, pathToFileURL(job.guestBundle).href);
    rmSync(job.blob, { force: true });
    // An empty environment: a module that reads one at load (DEBUG, say) would otherwise
    // carry this shell's value into every boot.
    const r = spawnSync(job.node, [...BUILD_FLAGS, '--snapshot-blob', job.blob, '--build-snapshot', script], { encoding: 'utf8', timeout: 120_000, env: {} });
    if (r.status !== 0) throw new Error(`node --build-snapshot failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).map((l) => l.slice(0, 300)).join('\n')}`);
    const ready = await startOnce(job);
    const startup = /"startupMs":(\{[^}]*\})/.exec(ready)?.[1] ?? '?';
    return `snapshot ${(statSync(job.blob).size / 1e6).toFixed(1)} MB; the sealed service starts from it (startupMs ${startup} on this host)`;
  } catch (err) {
    rmSync(job.blob, { force: true });
    throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
