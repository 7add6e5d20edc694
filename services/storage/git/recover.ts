/**
 * Start-up recovery of a bare repository after a crash (SIGKILL, power loss): what an
 * interrupted push or store write can leave behind, none of which git itself needs —
 * temp files of platform/durable.ts, a .pack whose .idx was never written, and kith's
 * ref locks. Runs before the service listens, so no writer of this process is live; a
 * lock or temp file of another live process is left alone.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TEMP_FILE } from '../../../platform/durable.ts';
import { processAlive } from '../../../platform/process.ts';

/** Our own pid here is an earlier process that had it: at start-up nothing of ours is live. */
const otherProcessAlive = (pid: number) => pid !== process.pid && processAlive(pid) === true;

async function walk(dir: string, visit: (file: string, name: string) => Promise<void>): Promise<void> {
  for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) await walk(full, visit);
    else await visit(full, e.name);
  }
}

export async function recoverRepository(gitdir: string): Promise<string[]> {
  const removed: string[] = [];
  const rm = async (file: string) => {
    await fsp.rm(file, { force: true });
    removed.push(path.relative(gitdir, file));
  };
  await walk(gitdir, async (file, name) => {
    const temp = TEMP_FILE.exec(name);
    if (temp) {
      if (!otherProcessAlive(Number(temp[1]))) await rm(file);
      return;
    }
    if (name.endsWith('.lock') || name.endsWith('.lock.break')) {
      const m = /^kith (\d+) /.exec(await fsp.readFile(file, 'utf8').catch(() => ''));
      if (m && !otherProcessAlive(Number(m[1]))) await rm(file);
    }
  });
  const packDir = path.join(gitdir, 'objects', 'pack');
  const packs = await fsp.readdir(packDir).catch(() => [] as string[]);
  for (const name of packs) {
    if (name.endsWith('.pack') && !packs.includes(name.replace(/\.pack$/, '.idx'))) await rm(path.join(packDir, name));
  }
  return removed;
}
