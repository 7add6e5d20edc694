/**
 * A ConfigSource over one commit of a bare git repository: how a pushed config is read
 * and validated before any ref moves (the working tree is not touched).
 */
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import type { ConfigSource } from '../../../platform/config/spec.ts';

const MAX_FILE = 8 << 20;

/**
 * `sizes`: each file's size (tree-check.ts measured them from object headers); a file over
 * the limit is refused before its bytes are read.
 */
export function gitTreeSource(gitdir: string, commit: string, sizes?: Map<string, { size: number }>): ConfigSource {
  const treeCache = new Map<string, Map<string, { oid: string; type: string }>>();
  const treeAt = async (dir: string) => {
    const key = dir.replace(/\/+$/, '');
    let t = treeCache.get(key);
    if (t) return t;
    t = new Map();
    try {
      const { tree } = await git.readTree({ fs, gitdir, oid: commit, filepath: key === '' ? undefined : key });
      for (const e of tree) t.set(e.path, { oid: e.oid, type: e.type });
    } catch {
      // Absent folder, or a path through a file: an empty listing, as a folder source gives.
    }
    treeCache.set(key, t);
    return t;
  };
  return {
    async read(path) {
      const slash = path.lastIndexOf('/');
      const entry = (await treeAt(slash === -1 ? '' : path.slice(0, slash))).get(path.slice(slash + 1));
      if (!entry || entry.type !== 'blob') return undefined;
      const known = sizes?.get(path)?.size;
      if (known !== undefined && known > MAX_FILE) throw new Error(`${path} is ${known} bytes, over the limit maxConfigFileBytes = ${MAX_FILE}`);
      const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid });
      if (blob.length > MAX_FILE) throw new Error(`${path} is larger than ${MAX_FILE >> 20} MiB`);
      return Buffer.from(blob).toString('utf8');
    },
    async list(dir) {
      const t = await treeAt(dir);
      return [...t].map(([name, e]) => (e.type === 'tree' ? `${name}/` : name)).sort();
    },
  };
}

/** Every file of a commit's tree: path → blob oid. */
export async function listTreeFiles(gitdir: string, commit: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walkTree = async (oid: string, prefix: string) => {
    const { tree } = await git.readTree({ fs, gitdir, oid });
    for (const e of tree) {
      const p = prefix ? `${prefix}/${e.path}` : e.path;
      if (e.type === 'tree') await walkTree(e.oid, p);
      else if (e.type === 'blob') out.set(p, e.oid);
    }
  };
  const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit });
  await walkTree(c.tree, '');
  return out;
}
