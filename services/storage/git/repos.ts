// Bare repositories under one root: <root>/<name>.git, created with isomorphic-git's
// init (gitrepository-layout(5)); HEAD points at refs/heads/main.
import fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { fsyncDir } from '../../../platform/durable.ts';
import { DIR_MODE, privateGitFs } from './private-fs.ts';

import { isValidRepoName } from '../repo-name.ts';
export { isValidRepoName, REPO_NAME_RULE } from '../repo-name.ts';

export function repoPath(root: string, name: string): string {
  if (!isValidRepoName(name)) throw new Error(`invalid repository name ${JSON.stringify(name)}`);
  return path.join(root, `${name}.git`);
}

export async function repoExists(root: string, name: string): Promise<boolean> {
  if (!isValidRepoName(name)) return false;
  try {
    const st = await fsp.stat(path.join(repoPath(root, name), 'HEAD'));
    return st.isFile();
  } catch {
    return false;
  }
}

/** Creates an empty bare repository; idempotent. */
export async function createRepo(root: string, name: string): Promise<string> {
  const gitdir = repoPath(root, name);
  await fsp.mkdir(root, { recursive: true, mode: DIR_MODE });
  if (await repoExists(root, name)) return gitdir;
  await git.init({ fs: privateGitFs, dir: gitdir, gitdir, bare: true, defaultBranch: 'main' });
  await fsp.mkdir(path.join(gitdir, 'objects', 'pack'), { recursive: true, mode: DIR_MODE });
  await fsp.chmod(gitdir, DIR_MODE); // the repository's content is nobody else's
  await fsyncDir(gitdir);
  await fsyncDir(root);
  return gitdir;
}

export async function listRepos(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fsp.readdir(root);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (!e.endsWith('.git')) continue;
    const name = e.slice(0, -4);
    if (await repoExists(root, name)) out.push(name);
  }
  return out.sort();
}

export async function deleteRepo(root: string, name: string): Promise<boolean> {
  if (!(await repoExists(root, name))) return false;
  await fsp.rm(repoPath(root, name), { recursive: true, force: true });
  await fsyncDir(root);
  return true;
}
