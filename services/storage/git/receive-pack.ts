// receive-pack for smart HTTP: command list + packfile in, report-status out
// (gitprotocol-pack(5) "Pushing Data To a Server", "Report Status"; capabilities
// from gitprotocol-capabilities(5): report-status, delete-refs, atomic, side-band-64k,
// quiet, ofs-delta, no-thin). Objects are on disk and fsynced before any ref moves;
// refs move only after connectivity, fast-forward and pre-receive checks pass.
import fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { fsyncDir, writeFileDurable } from '../../../platform/durable.ts';
import { fileSource, indexPack, type IndexedPack, type InflateLimits } from './index-pack.ts';
import { readAt } from './file-range.ts';
import type { ReceivedPack } from './push-body.ts';
import { ZERO_OID, hasObject, rememberObject, refreshStore, parseCommit, parseTag, parseTree, readRaw, type Store } from './objects.ts';
import { FLUSH, PktReader, lineText, pktLine, sideband } from './pktline.ts';
import { isValidRefName, resolve, setRef } from './refs.ts';
import { AGENT, ProtocolError, type Sink } from './upload-pack.ts';
import { withFileLock, withMutex } from '../store/lock.ts';
import { diskBytes } from '../store/cleanup.ts';
import { FILE_MODE } from './private-fs.ts';
import { LockedError } from '../store/errors.ts';

export const V0_RECEIVE_CAPS = [
  'report-status',
  'delete-refs',
  'side-band-64k',
  'quiet',
  'atomic',
  'ofs-delta',
  'no-thin', // ask for self-contained packs: connectivity is then checkable pack-locally
  'object-format=sha1',
  AGENT,
];

export interface RefUpdate {
  ref: string;
  oldOid: string; // ZERO_OID when the ref is created
  newOid: string; // ZERO_OID when the ref is deleted
}

export interface PreReceiveInput {
  repo: string;
  gitdir: string;
  updates: RefUpdate[];
  /** A file's bytes at a commit (null if absent), for validating pushed content. */
  readFile(commitOid: string, filepath: string): Promise<Uint8Array | null>;
  /** Every file path in a commit's tree. */
  listFiles(commitOid: string): Promise<string[]>;
}

export type HookResult = { ok: true } | { ok: false; messages: string[] };

export interface ReceiveHooks {
  preReceive?(input: PreReceiveInput): HookResult | Promise<HookResult>;
  /**
   * After refs moved, before the client is told: apply the change (config.git: publish it).
   * `failed` makes every moved ref's status that reason (the hook undoes what it can), so a
   * change that was not applied is never reported as ok.
   */
  beforeReport?(input: { repo: string; gitdir: string; updates: RefUpdate[] }): Promise<{ messages?: string[]; failed?: string }>;
  postReceive?(input: { repo: string; gitdir: string; updates: RefUpdate[] }): void | Promise<void>;
}

export interface ReceiveOptions {
  repo: string;
  store: Store;
  hooks?: ReceiveHooks;
  /** Allow non-fast-forward updates (git push --force). Default: refused. */
  allowNonFastForward?: boolean;
  /** Inflated-size limits of the pushed objects (index-pack.ts; its defaults otherwise). */
  limits?: InflateLimits;
  /** The repository may not grow past this on disk (the stored pack counted before it is written). */
  repoLimit?: { max: number; name: string };
  /** Unexpected failures while storing the pack (a full disk): for the log; the pusher is told too. */
  onError?(err: unknown): void;
}

interface Command extends RefUpdate {
  status: string | null; // null = ok so far, else the ng reason
}

export function parseCommands(body: Buffer): { commands: Command[]; caps: Set<string>; packOffset: number } {
  const r = new PktReader(body);
  const commands: Command[] = [];
  const caps = new Set<string>();
  for (;;) {
    const p = r.next();
    if (!p) throw new ProtocolError('request ended before flush');
    if (p.type === 'flush') break;
    if (p.type !== 'data') throw new ProtocolError('unexpected delimiter in command list');
    let text = p.data.toString('utf8');
    const nul = text.indexOf('\0');
    if (nul >= 0) {
      if (commands.length === 0) for (const c of text.slice(nul + 1).trim().split(' ')) if (c) caps.add(c);
      text = text.slice(0, nul);
    }
    text = text.endsWith('\n') ? text.slice(0, -1) : text;
    if (text.startsWith('shallow ')) continue; // a shallow client pushing: its boundary is informational
    const m = /^([0-9a-f]{40}) ([0-9a-f]{40}) (.+)$/.exec(text);
    if (!m) throw new ProtocolError(`bad command "${text.slice(0, 80)}"`);
    if (commands.length >= 10_000) throw new ProtocolError('too many commands');
    commands.push({ oldOid: m[1], newOid: m[2], ref: m[3], status: null });
  }
  return { commands, caps, packOffset: r.offset };
}

/**
 * Validates the received pack's framing and checksum, indexes it from its temp file
 * (bounded reads), and stores it as .pack+.idx; returns its object ids and types. The temp
 * file is gone afterwards, whatever happens.
 */
async function storePack(s: Store, pack: ReceivedPack, limits?: InflateLimits, repoLimit?: ReceiveOptions['repoLimit']): Promise<{ oids: string[]; types: IndexedPack['types']; files: string[] }> {
  try {
    if (pack.error) throw pack.error;
    if (pack.size < 32) throw new ProtocolError('pack truncated');
    let indexed: IndexedPack;
    const fh = await fsp.open(pack.file, 'r');
    try {
      const head = await readAt(fh, 0, 12);
      if (head.toString('latin1', 0, 4) !== 'PACK') throw new ProtocolError('not a packfile');
      const version = head.readUInt32BE(4);
      if (version !== 2 && version !== 3) throw new ProtocolError(`unsupported pack version ${version}`);
      if (!pack.checksumOk) throw new ProtocolError('pack checksum mismatch');
      if (head.readUInt32BE(8) === 0) return { oids: [], types: new Map(), files: [] };
      // Index from the file first (native zlib, a bounded window; a bad pack is refused
      // before it gets a name), then rename it into place and write the .idx through
      // O_DSYNC + rename (platform/durable.ts): a kill between the two leaves a .pack
      // without .idx, which git ignores and start-up clean-up removes.
      try {
        indexed = await indexPack(fileSource(fh, pack.size), limits);
      } catch (err) {
        throw new ProtocolError(`index-pack failed: ${(err as Error).message.split('\n')[0]}`);
      }
    } finally {
      await fh.close();
    }
    const checksum = indexed.idx.subarray(indexed.idx.length - 40, indexed.idx.length - 20);
    // The connectivity check reads these: from memory, not inflated again from disk.
    for (const o of indexed.structure) rememberObject(s, o.oid, { type: o.type, body: o.body });
    const dir = path.dirname(pack.file);
    const name = `pack-${checksum.toString('hex')}`;
    const packFile = path.join(dir, name + '.pack');
    const idxFile = path.join(dir, name + '.idx');
    // The same pack pushed again (same checksum, same name): refs may already use it, so it
    // is never removed if this push is refused.
    const existed = await fsp.access(idxFile).then(() => true, () => false);
    if (existed) return { oids: indexed.oids, types: indexed.types, files: [] };
    if (repoLimit) {
      // The temp file is in the repository already: counted by diskBytes.
      const after = (await diskBytes(s.gitdir)) + indexed.idx.length;
      if (after > repoLimit.max) throw new ProtocolError(`the repository would be ${after} bytes on disk, over the limit ${repoLimit.name} = ${repoLimit.max} bytes: push less, or raise the limit`);
    }
    try {
      await fsp.rename(pack.file, packFile);
      await fsyncDir(dir);
      await writeFileDurable(idxFile, indexed.idx, { tempPrefix: 'tmp_idx_', mode: FILE_MODE });
      return { oids: indexed.oids, types: indexed.types, files: [packFile, idxFile] };
    } catch (err) {
      await removeFiles([packFile, idxFile]);
      throw err;
    }
  } finally {
    await fsp.rm(pack.file, { force: true });
  }
}

async function removeFiles(files: string[]): Promise<void> {
  for (const f of files) await fsp.rm(f, { force: true });
  if (files[0]) await fsyncDir(path.dirname(files[0])).catch(() => {});
}

/** Every object reachable from `tip` that came in this pack has all its references present. */
async function isConnected(s: Store, tip: string, inPack: IndexedPack['types'], checked: Set<string>): Promise<boolean> {
  const stack = [tip];
  while (stack.length) {
    const oid = stack.pop()!;
    if (checked.has(oid)) continue;
    checked.add(oid);
    if (!inPack.has(oid)) {
      // Objects already in the repository are taken as complete, as git does for
      // objects outside the quarantine.
      if (!(await hasObject(s, oid))) return false;
      continue;
    }
    // A blob refers to nothing: its body (maybe huge) is never read here.
    if (inPack.get(oid) === 'blob') continue;
    const { type, body } = await readRaw(s, oid);
    if (type === 'commit') {
      const c = parseCommit(body);
      stack.push(c.tree, ...c.parents);
    } else if (type === 'tree') {
      for (const e of parseTree(body)) if (e.mode !== '160000') stack.push(e.oid);
    } else if (type === 'tag') stack.push(parseTag(body).object);
  }
  return true;
}

/**
 * Whether `oldOid` is an ancestor of `newOid`: a walk over commit parents read through the
 * pack index (isomorphic-git's isDescendent would load whole packfiles into memory).
 */
async function isFastForward(s: Store, oldOid: string, newOid: string): Promise<boolean> {
  try {
    if ((await readRaw(s, oldOid)).type !== 'commit' || (await readRaw(s, newOid)).type !== 'commit') return false;
    const seen = new Set<string>([newOid]);
    const queue = [newOid];
    for (let next = 0; next < queue.length; next++) {
      const oid = queue[next]!;
      for (const p of parseCommit((await readRaw(s, oid)).body).parents) {
        if (p === oldOid) return true;
        if (!seen.has(p)) {
          seen.add(p);
          queue.push(p);
        }
      }
    }
    return false;
  } catch {
    return false;
  }
}

/**
 * Holds every ref's lock while `fn` runs, in sorted order (no deadlock): the same
 * in-process mutex key and `<ref>.lock` file (O_EXCL, git's lockfile protocol) as the
 * versioned store (../store/lock.ts), so a push and a store write never race a ref.
 */
export async function withRefLocks<T>(gitdir: string, refs: string[], fn: () => Promise<T>): Promise<T> {
  if (refs.length === 0) return fn();
  const real = await fsp.realpath(gitdir);
  const sorted = [...new Set(refs)].sort();
  const hold = (i: number): Promise<T> => {
    if (i === sorted.length) return fn();
    const ref = sorted[i];
    const key = ref.startsWith('refs/heads/') ? `${real}#${ref.slice('refs/heads/'.length)}` : `${real}#${ref}`;
    const lockFile = path.join(real, `${ref}.lock`);
    return withMutex(key, async () => {
      await fsp.mkdir(path.dirname(lockFile), { recursive: true });
      return withFileLock(lockFile, () => hold(i + 1));
    });
  };
  return hold(0);
}

function hookInput(opts: ReceiveOptions, updates: RefUpdate[]): PreReceiveInput {
  const gitdir = opts.store.gitdir;
  return {
    repo: opts.repo,
    gitdir,
    updates,
    async readFile(commitOid, filepath) {
      try {
        const { blob } = await git.readBlob({ fs, gitdir, oid: commitOid, filepath, cache: opts.store.cache });
        return blob;
      } catch {
        return null;
      }
    },
    listFiles: (commitOid) => git.listFiles({ fs, gitdir, ref: commitOid, cache: opts.store.cache }),
  };
}

/** Handles one POST git-receive-pack: its command list, and its pack already in a temp file (push-body.ts); writes the report to `out`. */
export async function receivePack(opts: ReceiveOptions, head: Buffer, pack: ReceivedPack | undefined, out: Sink): Promise<void> {
  const s = opts.store;
  let parsed: ReturnType<typeof parseCommands>;
  try {
    parsed = parseCommands(head);
  } catch (err) {
    if (pack) await fsp.rm(pack.file, { force: true });
    throw err;
  }
  const { commands, caps } = parsed;
  const sb = caps.has('side-band-64k');
  const messages: string[] = [];
  let unpack = 'ok';
  let stored: { oids: string[]; types: IndexedPack['types']; files: string[] } = { oids: [], types: new Map(), files: [] };
  const needsPack = commands.some((c) => c.newOid !== ZERO_OID);

  let moved: RefUpdate[] = [];
  // One push per repository at a time, pack included: a refused push removes its pack,
  // which must not be a pack another push is relying on.
  // One push at a time per repository: the old-value checks and ref writes must not interleave.
  await withMutex(`push:${s.gitdir}`, async () => {
    if (needsPack || pack) {
      try {
        if (!pack) throw new ProtocolError('pack truncated');
        stored = await storePack(s, pack, opts.limits, opts.repoLimit);
        refreshStore(s); // the new pack must be visible to the checks below
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!(err instanceof ProtocolError)) opts.onError?.(err);
        unpack = err instanceof ProtocolError ? err.message
          : code === 'ENOSPC' ? 'the server is out of disk space (ENOSPC) while storing the pack; nothing changed: free space on the kith data disk and push again'
          : code === 'EROFS' ? 'the server\'s data folder is read-only (EROFS); nothing changed'
          : `storing the pack failed (${code ?? (err as Error).message}); nothing changed`;
        // Said on the side band too, so `git push` prints it as a `remote:` line.
        messages.push(`kith: ${unpack}`);
      }
    }

    for (const c of commands) {
      if (unpack !== 'ok') c.status = 'unpacker error';
      else if (!isValidRefName(c.ref)) c.status = 'funny refname';
      else if (c.oldOid === c.newOid && c.newOid === ZERO_OID) c.status = 'nothing to do';
    }
    const inPack = stored.types;
    const checked = new Set<string>();
    for (const c of commands) {
      if (c.status || c.newOid === ZERO_OID) continue;
      if (!(await isConnected(s, c.newOid, inPack, checked).catch(() => false))) c.status = 'missing necessary objects';
    }

    const toLock = commands.filter((c) => !c.status).map((c) => c.ref);
    try {
      await withRefLocks(s.gitdir, toLock, async () => {
        for (const c of commands) {
          if (c.status) continue;
          const current = (await resolve(s.gitdir, c.ref)) ?? ZERO_OID;
          if (current !== c.oldOid) c.status = 'stale info';
          else if (c.oldOid !== ZERO_OID && c.newOid !== ZERO_OID && !opts.allowNonFastForward) {
            if (!(await isFastForward(s, c.oldOid, c.newOid))) c.status = 'non-fast-forward';
          }
        }
        const atomic = caps.has('atomic');
        if (atomic && commands.some((c) => c.status)) {
          for (const c of commands) if (!c.status) c.status = 'atomic push failed';
        }
        const ready = commands.filter((c) => !c.status);
        if (ready.length && opts.hooks?.preReceive) {
          const updates = ready.map(({ ref, oldOid, newOid }) => ({ ref, oldOid, newOid }));
          let verdict: HookResult;
          try {
            verdict = await opts.hooks.preReceive(hookInput(opts, updates));
          } catch (err) {
            verdict = { ok: false, messages: [`pre-receive hook failed: ${(err as Error).message}`] };
          }
          if (!verdict.ok) {
            messages.push(...verdict.messages);
            for (const c of ready) c.status = 'pre-receive hook declined';
          }
        }
        const applied: Command[] = [];
        for (const c of commands) {
          if (c.status) continue;
          try {
            await setRef(s.gitdir, c.ref, c.newOid);
            applied.push(c);
          } catch (err) {
            c.status = 'failed to update ref';
            if (atomic) {
              // Put back what already moved: an atomic push is all or nothing.
              for (const a of applied.reverse()) await setRef(s.gitdir, a.ref, a.oldOid).catch(() => {});
              for (const x of commands) if (!x.status || applied.includes(x)) x.status = 'atomic push failed';
              break;
            }
          }
        }
        moved = commands.filter((c) => !c.status).map(({ ref, oldOid, newOid }) => ({ ref, oldOid, newOid }));
      });
    } catch (err) {
      if (!(err instanceof LockedError)) throw err;
      for (const c of commands) if (!c.status) c.status = 'failed to lock';
    }
    // Nothing moved: the pack is garbage nobody references. Drop it.
    if (moved.length === 0 && stored.files.length) await removeFiles(stored.files);
  });

  if (moved.length && opts.hooks?.beforeReport) {
    let r: { messages?: string[]; failed?: string };
    try {
      r = await opts.hooks.beforeReport({ repo: opts.repo, gitdir: s.gitdir, updates: moved });
    } catch (err) {
      r = { failed: `not applied: ${(err as Error).message}` };
    }
    if (r.messages) messages.push(...r.messages);
    if (r.failed) for (const c of commands) if (!c.status && moved.some((m) => m.ref === c.ref)) c.status = r.failed;
  }

  // Without report-status the client asked for no report (gitprotocol-pack(5)).
  const report: Buffer[] = [];
  if (caps.has('report-status')) {
    report.push(pktLine(`unpack ${unpack}`));
    for (const c of commands) report.push(pktLine(c.status ? `ng ${c.ref} ${c.status}` : `ok ${c.ref}`));
    report.push(FLUSH);
  }
  if (sb) {
    for (const m of messages) for (const line of m.split('\n')) for (const b of sideband(2, Buffer.from(line + '\n'))) await out(b);
    if (report.length) for (const b of sideband(1, Buffer.concat(report))) await out(b);
    await out(FLUSH);
  } else {
    for (const b of report) await out(b);
  }
  if (moved.length && opts.hooks?.postReceive) {
    try {
      await opts.hooks.postReceive({ repo: opts.repo, gitdir: s.gitdir, updates: moved });
    } catch {
      // post-receive cannot undo anything; the push is already acknowledged
    }
  }
}

/**
 * The answer to a push refused before its pack was read (too large): the protocol's own
 * channels, so `git push` prints the reason as `remote:` lines and each ref as rejected —
 * not "RPC failed; HTTP 413". `head` holds at least the command list.
 */
export function refusePush(head: Buffer, reason: string, short: string): Buffer {
  let commands: Command[] = [];
  let caps = new Set<string>();
  try {
    ({ commands, caps } = parseCommands(head));
  } catch {
    // The command list itself was cut or bad: the reason alone, as an ERR packet.
    return pktLine(`ERR ${reason}`);
  }
  const report = [pktLine(`unpack ${reason}`), ...commands.map((c) => pktLine(`ng ${c.ref} ${short}`)), FLUSH];
  if (!caps.has('side-band-64k')) return Buffer.concat(caps.has('report-status') ? report : [pktLine(`ERR ${reason}`)]);
  return Buffer.concat([...sideband(2, Buffer.from(`kith: ${reason}\n`)), ...(caps.has('report-status') ? sideband(1, Buffer.concat(report)) : []), FLUSH]);
}
