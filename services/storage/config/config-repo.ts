/**
 * config.git: the owner's configuration repository, and its published working tree.
 *
 * The bare repository is the source of truth, and a versioned store (../store/store.ts)
 * whose pre-commit hook validates the whole new tree: a service's write through the store
 * API and `kith up`'s seeding of a new service's defaults take the one compare-and-swap
 * commit path of the store, and a git push is checked by the same validation before any
 * ref moves. The working tree (the `--config` folder every service reads and watches) is a
 * copy of the main branch's head that only this module writes.
 */
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable, fsyncDir } from '../../../platform/durable.ts';
import { formatIssue } from '../../../platform/config/spec.ts';
import type { TreeValidation, TreeValidator } from '../../../platform/config/validate-tree.ts';
import { gitTreeSource } from './git-tree-source.ts';
import { checkConfigTree } from './tree-check.ts';
import { DIR_MODE, FILE_MODE } from '../git/private-fs.ts';
import { openStore, type PreCommit, type Store, type StoreOptions } from '../store/store.ts';
import { ConflictError, RefusedError, StoreError } from '../store/errors.ts';

export const CONFIG_REPO = 'config';
export const CONFIG_BRANCH = 'refs/heads/main';
const KITH = { name: 'kith', email: 'kith@localhost' };

/** Files of a folder, recursively: path → bytes. Dot-files and folders are skipped. */
async function readFolder(root: string, rel = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const entries = await fsp.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await readFolder(root, p)) out.set(k, v);
    else if (e.isFile()) out.set(p, await fsp.readFile(path.join(root, p)));
  }
  return out;
}

/**
 * config.git as a store: every commit is validated (the whole tree, every service's spec
 * and the cross-service rules) before main moves; a refusal is a RefusedError (422) whose
 * issues are `file:line: field: problem`.
 */
export function openConfigStore(gitdir: string, validate: TreeValidator, options: Omit<StoreOptions, 'dir' | 'preCommit' | 'branch'> = {}): Promise<Store> {
  return openStore({ ...options, dir: gitdir, branch: 'main', preCommit: configPreCommit(validate) });
}

/** The store's pre-commit hook for config.git, validating with the registry's specs. */
export function configPreCommit(validate: TreeValidator): PreCommit {
  return async ({ dir, commit }) => {
    const v = await validateCommit(dir, commit, validate);
    if (!v.ok) throw new RefusedError(v.issues.map(formatIssue), 'this configuration');
  };
}

/**
 * Create config.git from the working tree if it does not exist (the first start after
 * `kith up` seeded the defaults); otherwise publish its head to the working tree, so the
 * repository always wins over stray hand edits. Returns the head commit.
 */
export async function ensureConfigRepo(gitdir: string, workTree: string): Promise<{ head: string; created: boolean; reset: string[] }> {
  // Created means main resolves: a first start cut off after `git init` (HEAD there, no
  // main yet) is created again, not taken for a repository.
  const exists = fs.existsSync(path.join(gitdir, 'HEAD')) && (await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH }).then(() => true, () => false));
  if (!exists) {
    const store = await openStore({ dir: gitdir, create: true, author: KITH });
    const files = [...(await readFolder(workTree))].sort(([a], [b]) => (a < b ? -1 : 1));
    const r = await store.writeMany(files.map(([p, content]) => ({ path: p, content })), { message: 'Initial configuration', expectedHead: null });
    return { head: r.commit, created: true, reset: [] };
  }
  const head = await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH });
  const reset = await publishCommit(gitdir, head, workTree);
  return { head, created: false, reset };
}

/**
 * Validate the tree of a commit: first the tree as a whole (every path safe to publish, the
 * file-count and size limits, measured from object headers), then every service's schema
 * and the cross-service rules. The one place storage calls the config validation.
 */
export async function validateCommit(gitdir: string, commit: string, validate: TreeValidator): Promise<TreeValidation> {
  const tree = await checkConfigTree(gitdir, commit);
  if (tree.issues.length > 0) return { ok: false, issues: tree.issues };
  return validate(gitTreeSource(gitdir, commit, tree.files));
}

/** A commit that cannot be published (it was never validated: written under the ref by hand). */
export class PublishError extends Error {
  override name = 'PublishError';
}

/** `remote:` lines for a refused push. */
export function refusalMessages(v: TreeValidation): string[] {
  return ['kith: this configuration was refused; nothing changed.', ...v.issues.map((i) => `  ${formatIssue(i)}`), 'Fix the files named above, commit, and push again.'];
}

/**
 * Publish whatever main points at now: safe to call in any order, as often as needed.
 * `from`: the commit published last (the folder is known to hold it): only the paths that
 * differ between the two trees are written or removed.
 */
export async function publishHead(gitdir: string, workTree: string, from?: string): Promise<{ head: string; changed: string[] }> {
  const head = await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH });
  return { head, changed: head === from ? [] : await publishCommit(gitdir, head, workTree, from) };
}

/**
 * Make the working tree equal to a commit's tree: write files that differ (durably),
 * delete files the commit no longer has. Returns the paths changed.
 */
export async function publishCommit(gitdir: string, commit: string, workTree: string, from?: string): Promise<string[]> {
  // Nothing is written unless every path is safe: a tree that never passed validation
  // (written under the ref by hand) leaves the published folder as it was.
  const checked = await checkConfigTree(gitdir, commit, undefined, { sizes: false });
  if (checked.issues.length > 0) throw new PublishError(`commit ${commit} cannot be published: ${checked.issues.map(formatIssue).join('; ')}; push a commit that fixes it`);
  const wanted = new Map([...checked.files].map(([p, f]) => [p, f.oid]));
  // What the folder holds: the last published tree (incremental: trees compared, no file
  // read), or else the files themselves, hashed (at start, so stray hand edits lose).
  const old = from ? await checkConfigTree(gitdir, from, undefined, { sizes: false }).catch(() => undefined) : undefined;
  const present: Map<string, string | Buffer> = old && old.issues.length === 0 ? new Map([...old.files].map(([p, f]) => [p, f.oid])) : await readFolder(workTree);
  const changed: string[] = [];
  const touched = new Set<string>();
  for (const [p, oid] of wanted) {
    const have = present.get(p);
    if (typeof have === 'string' ? have === oid : have && (await git.hashBlob({ object: have })).oid === oid) continue;
    const { blob } = await git.readBlob({ fs, gitdir, oid });
    const full = path.join(workTree, p);
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: DIR_MODE });
    try {
      // The folder is synced once per batch, below, before publishing returns.
      await writeFileDurable(full, blob, { mode: FILE_MODE, syncDir: false });
    } catch (err) {
      await removeEmptyFolders(workTree, path.dirname(full)); // a folder made for nothing (disk full)
      for (const d of touched) await fsyncDir(d).catch(() => {});
      throw err;
    }
    touched.add(path.dirname(full));
    changed.push(p);
  }
  // Each folder written into, once, and its parents (a new folder is an entry of its parent), deepest first.
  const folders = new Set<string>();
  for (const d of touched) for (let x = d; x.startsWith(workTree + path.sep); x = path.dirname(x)) folders.add(x);
  if (touched.size > 0) folders.add(workTree);
  for (const d of [...folders].sort((a, b) => b.length - a.length)) await fsyncDir(d);
  for (const p of present.keys()) {
    if (wanted.has(p)) continue;
    const full = path.join(workTree, p);
    await fsp.rm(full, { force: true });
    await fsyncDir(path.dirname(full));
    changed.push(p);
    await removeEmptyFolders(workTree, path.dirname(full));
  }
  return changed.sort();
}

/** Remove `dir` and its parents while they are empty (never the tree root). */
async function removeEmptyFolders(workTree: string, dir: string): Promise<void> {
  for (; dir.startsWith(workTree + path.sep); dir = path.dirname(dir)) {
    if ((await fsp.readdir(dir).catch(() => ['?'])).length > 0) break;
    await fsp.rmdir(dir).catch(() => {});
  }
}

export interface ConfigFileChange {
  /** Path in the config tree, e.g. 'dns/zones/example.org.zone'. */
  path: string;
  /** New content, or null to delete the file. */
  content: Uint8Array | null;
  /** CAS: the file's blob must be this (null: must not exist); undefined: no check. */
  expectedBlob?: string | null;
}

export type ConfigWriteResult =
  | { ok: true; commit: string; changed: boolean }
  | { ok: false; status: 409 | 422; error: 'conflict' | 'invalid'; messages: string[] };

/**
 * Commit changes to config.git's main branch (what `kith up` does to seed a new service's
 * defaults while storage is down): one validated commit through the config store, with a
 * per-file compare-and-swap. The caller publishes the new head (publishHead) after.
 */
export async function writeConfigFiles(
  gitdir: string,
  changes: ConfigFileChange[],
  meta: { author: { name: string; email: string }; message: string; now?: () => number; validate: TreeValidator },
): Promise<ConfigWriteResult> {
  const store = await openConfigStore(gitdir, meta.validate, { pollMs: 0, ...(meta.now ? { now: meta.now } : {}) });
  try {
    const r = await store.writeMany(changes.map((c) => ({ path: c.path, content: c.content, ...(c.expectedBlob !== undefined ? { expectedBlob: c.expectedBlob } : {}) })), { author: meta.author, message: meta.message });
    return { ok: true, commit: r.commit, changed: r.changed };
  } catch (err) {
    if (err instanceof ConflictError) return { ok: false, status: 409, error: 'conflict', messages: [err.message] };
    if (err instanceof RefusedError) return { ok: false, status: 422, error: 'invalid', messages: err.issues };
    if (err instanceof StoreError) return { ok: false, status: 422, error: 'invalid', messages: [err.message] };
    throw err;
  }
}
