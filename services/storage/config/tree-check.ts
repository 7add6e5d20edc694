/**
 * Checks of a pushed config tree as a whole, before any file is read or validated: every
 * path, in every folder, is one the published config folder can hold safely (the store's
 * path rules: no `.`, `..`, `.git` in any case or HFS/NTFS spelling, NUL or other control
 * characters, backslashes, empty or over-long names; only plain files and folders — no
 * symlinks, no submodules), and the tree stays within the limits below (counted from object
 * headers: nothing is inflated to be measured). Trees are parsed here from their raw bytes
 * (gitformat: tree entries `<mode> <name>\0<20-byte id>`), because isomorphic-git refuses to
 * parse the hostile names this exists to report.
 */
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import type { ConfigIssue } from '../../../platform/config/spec.ts';
import { validatePath } from '../store/paths.ts';
import { objectSizer } from '../git/object-size.ts';

export interface ConfigTreeLimits {
  /** Files in config.git's tree. */
  maxConfigFiles: number;
  /** One config file, bytes. */
  maxConfigFileBytes: number;
  /** All config files together, bytes. */
  maxConfigTreeBytes: number;
}

export const CONFIG_TREE_LIMITS: ConfigTreeLimits = {
  maxConfigFiles: 10_000,
  maxConfigFileBytes: 8 << 20,
  maxConfigTreeBytes: 64 << 20,
};

export interface RawTreeEntry {
  mode: string;
  name: string;
  oid: string;
}

/** A tree object's entries, names as they are (latin1-safe: bytes kept as UTF-8 text). */
export function parseRawTree(body: Uint8Array): RawTreeEntry[] {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out: RawTreeEntry[] = [];
  let i = 0;
  while (i < b.length) {
    const sp = b.indexOf(0x20, i);
    const nul = sp < 0 ? -1 : b.indexOf(0, sp);
    if (sp < 0 || nul < 0 || nul + 21 > b.length) throw new Error('malformed tree object');
    out.push({ mode: b.toString('latin1', i, sp), name: b.toString('utf8', sp + 1, nul), oid: b.toString('hex', nul + 1, nul + 21) });
    i = nul + 21;
  }
  return out;
}

async function readRawTree(gitdir: string, oid: string, cache: object): Promise<RawTreeEntry[]> {
  const r = await git.readObject({ fs, gitdir, oid, format: 'content', cache });
  if (r.type !== 'tree') throw new Error(`${oid} is a ${r.type}, not a tree`);
  return parseRawTree(r.object as Uint8Array);
}

/**
 * Every file of a commit's tree (path → blob id and size), or the issues that refuse it.
 * Paths and the file count are checked from the trees alone; sizes are then read from
 * object headers, so a tree with too many files is refused before any blob is touched.
 */
export async function checkConfigTree(gitdir: string, commit: string, limits: ConfigTreeLimits = CONFIG_TREE_LIMITS, opts: { sizes?: boolean } = {}): Promise<{ issues: ConfigIssue[]; files: Map<string, { oid: string; size: number }> }> {
  const cache = {};
  const issues: ConfigIssue[] = [];
  const found: { path: string; oid: string }[] = [];
  let stop = false;
  const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit, cache });
  const walk = async (oid: string, prefix: string): Promise<void> => {
    for (const e of await readRawTree(gitdir, oid, cache)) {
      if (stop || issues.length >= 20) return; // enough to fix the first ones
      const p = prefix + e.name;
      const shown = JSON.stringify(p).slice(1, -1);
      try {
        validatePath(p);
      } catch (err) {
        issues.push({ file: shown, message: `${(err as Error).message.replace(/^bad path "[^]*?": /, '')}: config.git's tree may hold only plain names (rename or remove it)` });
        continue;
      }
      if (e.mode === '40000' || e.mode === '040000') {
        await walk(e.oid, p + '/');
        continue;
      }
      if (e.mode !== '100644' && e.mode !== '100755') {
        issues.push({ file: shown, message: `${e.mode === '120000' ? 'a symbolic link' : e.mode === '160000' ? 'a submodule' : `an entry of mode ${e.mode}`} cannot be published to the config folder: commit a plain file instead` });
        continue;
      }
      if (found.length >= limits.maxConfigFiles) {
        issues.push({ file: shown, message: `config.git would hold more than ${limits.maxConfigFiles} files, over the limit maxConfigFiles: remove files` });
        stop = true;
        return;
      }
      found.push({ path: p, oid: e.oid });
    }
  };
  await walk(c.tree, '');
  const files = new Map<string, { oid: string; size: number }>();
  if (issues.length > 0) return { issues, files };
  if (opts.sizes === false) {
    for (const f of found) files.set(f.path, { oid: f.oid, size: -1 });
    return { issues, files };
  }
  const sizeOf = objectSizer(gitdir);
  try {
    let total = 0;
    for (const f of found) {
      const size = await sizeOf(f.oid);
      if (size > limits.maxConfigFileBytes) {
        issues.push({ file: f.path, message: `is ${size} bytes, over the limit maxConfigFileBytes = ${limits.maxConfigFileBytes}: make it smaller` });
        continue;
      }
      total += size;
      if (total > limits.maxConfigTreeBytes) {
        issues.push({ file: f.path, message: `config.git's files would be more than ${limits.maxConfigTreeBytes} bytes together, over the limit maxConfigTreeBytes: remove or shrink files` });
        break;
      }
      files.set(f.path, { oid: f.oid, size });
    }
  } finally {
    await sizeOf.close();
  }
  return { issues, files };
}
