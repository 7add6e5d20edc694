/**
 * config.git: the owner's configuration repository, and its published working tree.
 *
 * The bare repository is the source of truth; the working tree (the `--config` folder every
 * service reads and watches) is a copy of the main branch's head that only this module
 * writes. A push is validated as a tree before any ref moves; once accepted, the changed
 * files are published durably and each affected service applies them live.
 */
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { durableGitFs } from '../../../platform/durable-fs.ts';
import { writeFileDurable, fsyncDir } from '../../../platform/durable.ts';
import { formatIssue } from '../../../platform/config/spec.ts';
import type { TreeValidation, TreeValidator } from '../../../platform/config/validate-tree.ts';
import { gitTreeSource, listTreeFiles } from './git-tree-source.ts';
import { withRefLocks } from '../git/receive-pack.ts';
import { writeRefDurable } from '../git/refs.ts';

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

/** Write a tree object for a set of files (path → blob oid). */
async function writeTreeOf(gitdir: string, files: Map<string, string>): Promise<string> {
  const children = new Map<string, Map<string, string> | string>();
  for (const [p, oid] of files) {
    const slash = p.indexOf('/');
    if (slash === -1) children.set(p, oid);
    else {
      const dir = p.slice(0, slash);
      let sub = children.get(dir);
      if (!(sub instanceof Map)) children.set(dir, (sub = new Map()));
      sub.set(p.slice(slash + 1), oid);
    }
  }
  const tree = [];
  for (const [name, v] of children) {
    if (v instanceof Map) tree.push({ mode: '040000', path: name, oid: await writeTreeOf(gitdir, v), type: 'tree' as const });
    else tree.push({ mode: '100644', path: name, oid: v, type: 'blob' as const });
  }
  return git.writeTree({ fs: durableGitFs, gitdir, tree });
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
    await fsp.mkdir(gitdir, { recursive: true });
    await git.init({ fs: durableGitFs, gitdir, bare: true, defaultBranch: 'main' });
    const files = await readFolder(workTree);
    const oids = new Map<string, string>();
    for (const [p, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) oids.set(p, await git.writeBlob({ fs: durableGitFs, gitdir, blob: bytes }));
    const tree = await writeTreeOf(gitdir, oids);
    const now = Math.floor(Date.now() / 1000);
    const head = await git.writeCommit({
      fs: durableGitFs,
      gitdir,
      commit: { message: 'Initial configuration\n', tree, parent: [], author: { ...KITH, timestamp: now, timezoneOffset: 0 }, committer: { ...KITH, timestamp: now, timezoneOffset: 0 } },
    });
    await git.writeRef({ fs: durableGitFs, gitdir, ref: CONFIG_BRANCH, value: head, force: true });
    return { head, created: true, reset: [] };
  }
  const head = await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH });
  const reset = await publishCommit(gitdir, head, workTree);
  return { head, created: false, reset };
}

/** Validate the tree of a commit against every service's schema and the cross-service rules. */
export function validateCommit(gitdir: string, commit: string, validate: TreeValidator): Promise<TreeValidation> {
  return validate(gitTreeSource(gitdir, commit));
}

/** `remote:` lines for a refused push. */
export function refusalMessages(v: TreeValidation): string[] {
  return ['kith: this configuration was refused; nothing changed.', ...v.issues.map((i) => `  ${formatIssue(i)}`), 'Fix the files named above, commit, and push again.'];
}

/** Publish whatever main points at now: safe to call in any order, as often as needed. */
export async function publishHead(gitdir: string, workTree: string): Promise<{ head: string; changed: string[] }> {
  const head = await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH });
  return { head, changed: await publishCommit(gitdir, head, workTree) };
}

/**
 * Make the working tree equal to a commit's tree: write files that differ (durably),
 * delete files the commit no longer has. Returns the paths changed.
 */
export async function publishCommit(gitdir: string, commit: string, workTree: string): Promise<string[]> {
  const wanted = await listTreeFiles(gitdir, commit);
  const present = await readFolder(workTree);
  const changed: string[] = [];
  for (const [p, oid] of wanted) {
    const have = present.get(p);
    if (have && (await git.hashBlob({ object: have })).oid === oid) continue;
    const { blob } = await git.readBlob({ fs, gitdir, oid });
    const full = path.join(workTree, p);
    await fsp.mkdir(path.dirname(full), { recursive: true });
    await writeFileDurable(full, blob);
    changed.push(p);
  }
  for (const p of present.keys()) {
    if (wanted.has(p)) continue;
    const full = path.join(workTree, p);
    await fsp.rm(full, { force: true });
    await fsyncDir(path.dirname(full));
    changed.push(p);
    // Remove folders the deletion emptied (never the tree root).
    for (let dir = path.dirname(full); dir.startsWith(workTree + path.sep); dir = path.dirname(dir)) {
      if ((await fsp.readdir(dir)).length > 0) break;
      await fsp.rmdir(dir);
    }
  }
  return changed.sort();
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
 * Commit changes to config.git's main branch on behalf of a service (a DNS dynamic
 * update, later a paired device): under the same ref lock as git push, check each file's
 * expected blob, build the new tree, validate it like a push, and move the ref. The caller
 * publishes the new head (publishHead) after.
 */
export async function writeConfigFiles(
  gitdir: string,
  changes: ConfigFileChange[],
  meta: { author: { name: string; email: string }; message: string; now?: () => number; validate: TreeValidator },
): Promise<ConfigWriteResult> {
  return withRefLocks(gitdir, [CONFIG_BRANCH], async () => {
    const head = await git.resolveRef({ fs, gitdir, ref: CONFIG_BRANCH });
    const files = await listTreeFiles(gitdir, head);
    for (const c of changes) {
      const have = files.get(c.path) ?? null;
      if (c.expectedBlob !== undefined && c.expectedBlob !== have) {
        return { ok: false as const, status: 409 as const, error: 'conflict' as const, messages: [`${c.path} changed since it was read (expected ${c.expectedBlob ?? 'no file'}, found ${have ?? 'no file'}): read it again and retry`] };
      }
    }
    let changed = false;
    for (const c of changes) {
      if (c.content === null) {
        changed = files.delete(c.path) || changed;
        continue;
      }
      const oid = await git.writeBlob({ fs: durableGitFs, gitdir, blob: c.content });
      if (files.get(c.path) !== oid) changed = true;
      files.set(c.path, oid);
    }
    if (!changed) return { ok: true as const, commit: head, changed: false };
    const tree = await writeTreeOf(gitdir, new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1))));
    const t = Math.floor((meta.now ?? Date.now)() / 1000);
    const who = { ...meta.author, timestamp: t, timezoneOffset: 0 };
    const commit = await git.writeCommit({ fs: durableGitFs, gitdir, commit: { message: meta.message.endsWith('\n') ? meta.message : meta.message + '\n', tree, parent: [head], author: who, committer: { ...KITH, timestamp: t, timezoneOffset: 0 } } });
    const v = await validateCommit(gitdir, commit, meta.validate);
    if (!v.ok) return { ok: false as const, status: 422 as const, error: 'invalid' as const, messages: v.issues.map(formatIssue) };
    await writeRefDurable(gitdir, CONFIG_BRANCH, commit);
    return { ok: true as const, commit, changed: true };
  });
}
