/**
 * The owner's seed, config part: at first boot PID 1 leaves first-boot-request.json in
 * storage's data folder (platform/boot/first-boot.ts: the home domain and host name for
 * dns/local.yaml, as YAML paths to set); storage, which owns config.git, applies it at
 * start as one validated commit authored "first boot", like seed-defaults.ts applies
 * defaults. YAML is edited as a document, so the files' comments stay.
 *
 * Idempotent: done is first-boot-done.json naming the seed; a request whose edits change
 * nothing (a crash after the commit, before the marker) is marked done without a commit.
 * A request that cannot apply (a file not in config.git, an invalid result) is logged,
 * marked done with the reason, and the box keeps its defaults: never a start-up loop.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import git from 'isomorphic-git';
import { isMap, parseDocument } from 'yaml';
import { writeFileDurable } from '../../../platform/durable.ts';
import type { TreeValidator } from '../../../platform/config/validate-tree.ts';
import type { Logger } from '../../../platform/log.ts';
import { FIRST_BOOT_DONE, FIRST_BOOT_REQUEST, type ConfigEdit, type FirstBootRequest } from '../../../platform/boot/owner-seed.ts';
import { CONFIG_BRANCH, writeConfigFiles } from './config-repo.ts';
import { listTreeFiles } from './git-tree-source.ts';

export const FIRST_BOOT_AUTHOR = { name: 'first boot', email: 'first-boot@kith.local' };
const LOCAL_YAML = 'dns/local.yaml';

export type FirstBootResult =
  | { state: 'none' }
  | { state: 'committed'; commit: string; files: string[] }
  | { state: 'unchanged' }
  | { state: 'refused'; messages: string[] }
  /** Could not run (a git or disk error): logged, tried again at the next start. */
  | { state: 'failed'; error: string };

/** Parse a request; anything else is a reason. Never throws. */
export function parseRequest(text: string): { ok: true; value: FirstBootRequest } | { ok: false; error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const r = v as FirstBootRequest;
  const okEdit = (e: ConfigEdit) => typeof e === 'object' && e !== null && typeof e.file === 'string' && /^[a-z0-9][a-z0-9._/-]*\.ya?ml$/.test(e.file) && !e.file.includes('..')
    && Array.isArray(e.set) && e.set.every((s) => Array.isArray(s.path) && s.path.length > 0 && s.path.every((p) => typeof p === 'string' && p.length > 0));
  if (typeof r !== 'object' || r === null || r.version !== 1 || typeof r.seed !== 'string' || !Array.isArray(r.edits) || !r.edits.every(okEdit)) {
    return { ok: false, error: 'not a first boot request (version 1, seed, edits[{ file, set[{ path, value }] }])' };
  }
  return { ok: true, value: r };
}

/** Set each path in a YAML text, keeping its comments. */
export function applyEdit(text: string, edit: ConfigEdit): { ok: true; text: string } | { ok: false; error: string } {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: false, error: `${edit.file} is not YAML: ${doc.errors[0]!.message.split('\n')[0]}` };
  if (doc.contents !== null && !isMap(doc.contents)) return { ok: false, error: `${edit.file} is not a YAML mapping` };
  for (const s of edit.set) doc.setIn(s.path, doc.createNode(s.value, { flow: Array.isArray(s.value) }));
  return { ok: true, text: doc.toString({ lineWidth: 0, flowCollectionPadding: false }) };
}

export interface FirstBootOptions { gitdir: string; dataDir: string; validate: TreeValidator; log: Logger; now?: () => number }

/** Apply a pending request, if any. Never throws: storage starts whatever happens here. */
export async function applyFirstBoot(opts: FirstBootOptions): Promise<FirstBootResult> {
  try {
    return await applyRequest(opts);
  } catch (err) {
    opts.log.error('first boot config not applied; retried at the next start', { error: err });
    return { state: 'failed', error: (err as Error).message };
  }
}

async function applyRequest(opts: FirstBootOptions): Promise<FirstBootResult> {
  const reqFile = path.join(opts.dataDir, FIRST_BOOT_REQUEST);
  let text: string;
  try {
    text = await fsp.readFile(reqFile, 'utf8');
  } catch {
    return { state: 'none' };
  }
  const finish = async (result: FirstBootResult, seed: string) => {
    await writeFileDurable(path.join(opts.dataDir, FIRST_BOOT_DONE), JSON.stringify({ seed, ...result }, null, 2) + '\n');
    await fsp.rm(reqFile, { force: true });
    return result;
  };
  const parsed = parseRequest(text);
  if (!parsed.ok) {
    opts.log.error('first boot request refused; the config keeps its defaults', { error: parsed.error });
    return finish({ state: 'refused', messages: [parsed.error] }, 'unreadable');
  }
  const req = parsed.value;
  const fs = { promises: fsp };
  const head = await git.resolveRef({ fs, gitdir: opts.gitdir, ref: CONFIG_BRANCH });
  const files = await listTreeFiles(opts.gitdir, head);
  const changes: { path: string; content: Buffer; expectedBlob: string }[] = [];
  const problems: string[] = [];
  for (const edit of req.edits) {
    const oid = files.get(edit.file);
    if (!oid) { problems.push(`${edit.file} is not in config.git: its service is not installed`); continue; }
    const { blob } = await git.readBlob({ fs, gitdir: opts.gitdir, oid });
    const r = applyEdit(Buffer.from(blob).toString('utf8'), edit);
    if (!r.ok) { problems.push(r.error); continue; }
    changes.push({ path: edit.file, content: Buffer.from(r.text), expectedBlob: oid });
  }
  // A new home domain renames the old one wherever the other services' config names it
  // (mail's default domain, addresses and host name are written in terms of the home
  // zone): otherwise the commit would be refused, mail's domain left without a zone.
  const homeOf = (text: string | undefined) => (text ? /^zone:\s*["']?([^"'\s#]+)/m.exec(text)?.[1]?.toLowerCase().replace(/\.$/, '') : undefined);
  const localOid = files.get(LOCAL_YAML);
  const oldHome = localOid ? homeOf(Buffer.from((await git.readBlob({ fs, gitdir: opts.gitdir, oid: localOid })).blob).toString('utf8')) : undefined;
  const newHome = homeOf(changes.find((c) => c.path === LOCAL_YAML)?.content.toString('utf8'));
  if (oldHome && newHome && oldHome !== newHome) {
    const word = new RegExp(`(?<![A-Za-z0-9-])${oldHome.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9-])`, 'gi');
    for (const [file, oid] of files) {
      if (file.startsWith('dns/') || !/\.ya?ml$/.test(file)) continue;
      const text = Buffer.from((await git.readBlob({ fs, gitdir: opts.gitdir, oid })).blob).toString('utf8');
      const renamed = text.replace(word, newHome);
      if (renamed !== text) changes.push({ path: file, content: Buffer.from(renamed), expectedBlob: oid });
    }
  }
  for (const p of problems) opts.log.warn('first boot: part of the owner seed not applied', { problem: p });
  if (changes.length === 0) return finish(problems.length > 0 ? { state: 'refused', messages: problems } : { state: 'unchanged' }, req.seed);
  const result = await writeConfigFiles(opts.gitdir, changes, {
    author: FIRST_BOOT_AUTHOR,
    message: `First boot: the owner's seed\n\n${changes.map((c) => c.path).join('\n')}`,
    validate: opts.validate,
    ...(opts.now ? { now: opts.now } : {}),
  });
  if (!result.ok) {
    opts.log.error('first boot config refused; the config keeps its defaults', { messages: result.messages });
    return finish({ state: 'refused', messages: [...problems, ...result.messages] }, req.seed);
  }
  if (!result.changed) return finish({ state: 'unchanged' }, req.seed);
  opts.log.info('applied the owner seed to config.git', { commit: result.commit, files: changes.map((c) => c.path) });
  return finish({ state: 'committed', commit: result.commit, files: changes.map((c) => c.path) }, req.seed);
}
