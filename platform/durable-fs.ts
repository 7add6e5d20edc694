/**
 * A file system for isomorphic-git whose every writeFile is durable and atomic
 * (platform/durable.ts: temp file, O_DSYNC, rename, folder sync). isomorphic-git writes
 * objects and refs with plain writeFile (open with O_TRUNC, then write): a crash between
 * the two would leave an empty ref or a torn object. With this fs a file is either absent,
 * old, or whole and on disk.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeFileDurable } from './durable.ts';

type WriteOpts = string | { encoding?: BufferEncoding; mode?: number } | undefined;

export interface PromiseFs {
  readFile: typeof fsp.readFile;
  writeFile(file: string, data: string | Uint8Array, opts?: WriteOpts): Promise<void>;
  unlink: typeof fsp.unlink;
  readdir: typeof fsp.readdir;
  mkdir(dir: string, opts?: Parameters<typeof fsp.mkdir>[1]): Promise<string | undefined | void>;
  rmdir: typeof fsp.rmdir;
  rm: typeof fsp.rm;
  stat: typeof fsp.stat;
  lstat: typeof fsp.lstat;
  readlink: typeof fsp.readlink;
  symlink: typeof fsp.symlink;
  chmod: typeof fsp.chmod;
}

/** Pass as `fs` to isomorphic-git: `git.commit({ fs: durableGitFs, ... })`. */
export const durableGitFs: { promises: PromiseFs } = {
  promises: {
    readFile: fsp.readFile.bind(fsp),
    async writeFile(file, data, opts) {
      const mode = typeof opts === 'object' ? opts.mode : undefined;
      const enc = typeof opts === 'string' ? opts : opts?.encoding;
      const bytes = typeof data === 'string' ? Buffer.from(data, (enc ?? 'utf8') as BufferEncoding) : data;
      // Git ignores its own tmp_obj_* files: a temp left by a kill then never shows in fsck.
      await writeFileDurable(file, bytes, { ...(mode !== undefined ? { mode } : {}), tempPrefix: 'tmp_obj_' });
    },
    async unlink(file) {
      await fsp.unlink(file);
      await fsyncDir(path.dirname(String(file)));
    },
    readdir: fsp.readdir.bind(fsp),
    // A new folder (objects/xx/) is an entry in its parent: sync the parent too.
    async mkdir(dir, opts) {
      const made = await fsp.mkdir(dir, opts);
      await fsyncDir(path.dirname(path.resolve(String(dir))));
      return made;
    },
    rmdir: fsp.rmdir.bind(fsp),
    rm: fsp.rm.bind(fsp),
    stat: fsp.stat.bind(fsp),
    lstat: fsp.lstat.bind(fsp),
    readlink: fsp.readlink.bind(fsp),
    symlink: fsp.symlink.bind(fsp),
    chmod: fsp.chmod.bind(fsp),
  },
};
