// Reading and durably updating refs of a bare repository (gitrepository-layout(5):
// HEAD, refs/, packed-refs). Reads go through isomorphic-git; writes are our own
// temp+fsync+rename so a ref never moves before it is on disk.
import fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { fsyncDir, writeFileDurable } from '../../../platform/durable.ts';
import { privateGitFs as durableGitFs } from './private-fs.ts';
import { ZERO_OID, peel, type Store } from './objects.ts';

export interface RefEntry {
  name: string; // full name, e.g. refs/heads/main
  oid: string;
  peeled?: string; // for annotated tags: the object the tag chain ends at
}

export async function headTarget(gitdir: string): Promise<string | null> {
  try {
    const text = await fsp.readFile(path.join(gitdir, 'HEAD'), 'utf8');
    const m = /^ref: (\S+)\s*$/.exec(text);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

export async function resolve(gitdir: string, ref: string): Promise<string | null> {
  try {
    return await git.resolveRef({ fs, gitdir, ref });
  } catch {
    return null;
  }
}

/** All refs under refs/, sorted by name, with peeled values for annotated tags. */
export async function listAllRefs(s: Store): Promise<RefEntry[]> {
  const names = await git.listRefs({ fs, gitdir: s.gitdir, filepath: 'refs' });
  const out: RefEntry[] = [];
  for (const short of names) {
    const name = 'refs/' + short;
    const oid = await resolve(s.gitdir, name);
    if (!oid) continue;
    const entry: RefEntry = { name, oid };
    if (name.startsWith('refs/tags/')) {
      try {
        const p = await peel(s, oid);
        if (p.oid !== oid) entry.peeled = p.oid;
      } catch {
        // a dangling tag ref is still advertised, just not peeled
      }
    }
    out.push(entry);
  }
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

/**
 * git-check-ref-format(1) rules, for names a client asks us to create. Strict on
 * purpose: the name becomes a path under the repository.
 */
export function isValidRefName(name: string): boolean {
  if (!name.startsWith('refs/') || name.length > 1024) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return false;
  if (name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  if (name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) return false;
  for (const part of name.split('/')) {
    if (part === '' || part.startsWith('.') || part.endsWith('.lock')) return false;
  }
  return name.split('/').length >= 3;
}

/** Points `ref` at `oid` durably (temp file, fsync, rename, fsync dir). */
export async function writeRefDurable(gitdir: string, ref: string, oid: string): Promise<void> {
  if (!isValidRefName(ref)) throw new Error(`invalid ref name ${ref}`);
  const file = path.join(gitdir, ref);
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  await writeFileDurable(file, oid + '\n');
}

/** Deletes `ref` (loose and packed) and fsyncs what changed. */
export async function deleteRefDurable(gitdir: string, ref: string): Promise<void> {
  if (!isValidRefName(ref)) throw new Error(`invalid ref name ${ref}`);
  // durableGitFs: if the ref was packed, the rewritten packed-refs is on disk on return.
  await git.deleteRef({ fs: durableGitFs, gitdir, ref });
  await fsyncDir(path.dirname(path.join(gitdir, ref)));
  await fsyncDir(gitdir);
}

export async function setRef(gitdir: string, ref: string, oid: string): Promise<void> {
  if (oid === ZERO_OID) await deleteRefDurable(gitdir, ref);
  else await writeRefDurable(gitdir, ref, oid);
}
