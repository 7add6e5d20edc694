/**
 * platform/durable-fs.ts with private modes: every file isomorphic-git writes into a
 * repository here (objects hold the owner's content, config.git's may hold TSIG secrets) is
 * 0600 and every folder it makes 0700, whatever the umask. Storage passes this as `fs` to
 * isomorphic-git wherever it writes.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { durableGitFs, type PromiseFs } from '../../../platform/durable-fs.ts';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const d = durableGitFs.promises;
export const privateGitFs: { promises: PromiseFs } = {
  promises: {
    ...d,
    writeFile: (file, data, opts) => d.writeFile(file, data, { ...(typeof opts === 'object' ? opts : opts ? { encoding: opts as BufferEncoding } : {}), mode: FILE_MODE }),
    mkdir: (dir, opts) => d.mkdir(dir, { ...(typeof opts === 'object' ? opts : {}), mode: DIR_MODE }),
  },
};

/**
 * Make every file under `dir` 0600 and every folder 0700 (`dir` included), where they are
 * not: what an older version (or a umask) left readable. Symbolic links are left alone.
 * Returns how many entries changed.
 */
export async function tightenModes(dir: string): Promise<number> {
  let changed = 0;
  const fix = async (p: string, want: number) => {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (st && !st.isSymbolicLink() && (st.mode & 0o777) !== want) {
      await fsp.chmod(p, want).catch(() => {});
      changed++;
    }
  };
  const walk = async (d: string): Promise<void> => {
    await fix(d, DIR_MODE);
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) await fix(p, FILE_MODE);
    }
  };
  await walk(dir);
  return changed;
}
