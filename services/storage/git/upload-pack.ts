// upload-pack for smart HTTP (stateless RPC): the v0 advertisement and want/have
// negotiation with multi_ack_detailed (gitprotocol-pack(5), gitprotocol-http(5)),
// and protocol v2 `ls-refs` and `fetch` (gitprotocol-v2(5)). Shallow fetches per
// gitprotocol-pack(5) "Shallow Clones". Output goes to a Sink one chunk at a time.
import { enumerateObjects, shallowInfo, wantedCommits } from './enumerate.ts';
import { OID_RE, ZERO_OID, forgetBodies, hasObject, parseCommit, parseTag, readRaw, type Store } from './objects.ts';
import { writePack } from './pack-writer.ts';
import { DELIM, FLUSH, PktReader, lineText, pkt, pktLine, sideband, sidebandParts } from './pktline.ts';
import { headTarget, listAllRefs, resolve } from './refs.ts';

/** Where output goes: a chunk, or pieces that go out together as one write (framed pack data). */
export type Sink = (chunk: Buffer | readonly Buffer[]) => Promise<void>;

export const AGENT = 'agent=kith-storage/0.1';

/** A request the client got wrong: becomes an ERR packet, never a crash. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export const V0_UPLOAD_CAPS = [
  'multi_ack',
  'multi_ack_detailed',
  'side-band',
  'side-band-64k',
  'no-progress',
  'include-tag',
  'shallow',
  'deepen-relative',
  'ofs-delta',
  'object-format=sha1',
  AGENT,
];

/** The refs part of the v0 advertisement (after the "# service=" header). */
export async function advertiseRefsV0(s: Store, caps: string[], withHead: boolean): Promise<Buffer[]> {
  const refs = await listAllRefs(s);
  const out: Buffer[] = [];
  const capList = [...caps];
  const head = withHead ? await headTarget(s.gitdir) : null;
  const headOid = head ? await resolve(s.gitdir, head) : null;
  if (head && headOid) capList.push(`symref=HEAD:${head}`);
  const capStr = capList.join(' ');
  const lines: string[] = [];
  if (headOid) lines.push(`${headOid} HEAD`);
  for (const r of refs) {
    lines.push(`${r.oid} ${r.name}`);
    if (r.peeled) lines.push(`${r.peeled} ${r.name}^{}`);
  }
  if (lines.length === 0) lines.push(`${ZERO_OID} capabilities^{}`);
  lines.forEach((l, i) => out.push(i === 0 ? pkt(`${l}\0${capStr}\n`) : pktLine(l)));
  out.push(FLUSH);
  return out;
}

export function advertiseV2(): Buffer[] {
  return [
    pktLine('version 2'),
    pktLine(AGENT),
    pktLine('ls-refs=unborn'),
    pktLine('fetch=shallow'),
    pktLine('object-format=sha1'),
    FLUSH,
  ];
}

interface FetchArgs {
  wants: string[];
  haves: string[];
  shallows: string[];
  depth: number;
  done: boolean;
  caps: Set<string>;
}

function parseOidArg(line: string, prefix: string): string {
  const oid = line.slice(prefix.length).split(' ')[0];
  if (!OID_RE.test(oid)) throw new ProtocolError(`bad object id in "${line.slice(0, 60)}"`);
  return oid;
}

function parseDepth(line: string): number {
  const v = line.slice('deepen '.length);
  // git sends 2147483647 (INFINITE_DEPTH) for --unshallow.
  if (!/^[1-9][0-9]{0,9}$/.test(v) || Number(v) > 0x7fffffff) throw new ProtocolError(`bad deepen value "${v.slice(0, 20)}"`);
  return Number(v);
}

const MAX_WANTS = 100_000;

/**
 * Wants must be ref tips (or peeled tags), or commits reachable from them — git's
 * allow-reachable-sha1-in-want, which stateless HTTP needs anyway when a ref moves
 * between the advertisement and the POST. Objects no ref reaches (a deleted branch)
 * stay unreachable to clients.
 */
async function checkWants(s: Store, wants: string[]): Promise<void> {
  if (wants.length > MAX_WANTS) throw new ProtocolError('too many wants');
  const tips = new Set<string>();
  for (const r of await listAllRefs(s)) {
    tips.add(r.oid);
    if (r.peeled) tips.add(r.peeled);
  }
  const head = await headTarget(s.gitdir);
  const headOid = head ? await resolve(s.gitdir, head) : null;
  if (headOid) tips.add(headOid);
  const others = wants.filter((w) => !tips.has(w));
  if (others.length === 0) return;
  for (const w of others) if (!(await hasObject(s, w))) throw new ProtocolError(`upload-pack: not our ref ${w}`);
  const reachable = await commitsReachable(s, [...tips], new Set(others));
  for (const w of others) if (!reachable.has(w)) throw new ProtocolError(`upload-pack: not our ref ${w}`);
}

/** Walks commits from `starts` until every oid in `targets` was seen (or history ends). */
async function commitsReachable(s: Store, starts: string[], targets: Set<string>): Promise<Set<string>> {
  const seen = new Set<string>();
  const stack = [...starts];
  let left = targets.size;
  while (stack.length && left > 0) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (targets.has(oid)) left--;
    let o;
    try {
      o = await readRaw(s, oid);
    } catch {
      continue;
    }
    if (o.type === 'commit') stack.push(...parseCommit(o.body).parents);
    else if (o.type === 'tag') stack.push(parseTag(o.body).object);
  }
  return seen;
}

async function commonOf(s: Store, haves: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const h of haves) if (await hasObject(s, h)) out.push(h);
  return out;
}

async function tagRefs(s: Store) {
  return (await listAllRefs(s)).filter((r) => r.name.startsWith('refs/tags/') && r.peeled);
}

/** Streams the pack, on band 1 when side-band is on, with progress on band 2. */
async function sendPack(
  s: Store,
  oids: string[],
  out: Sink,
  mode: { sideband: 0 | 1000 | 65520; progress: boolean },
): Promise<void> {
  const maxData = mode.sideband === 1000 ? 999 - 4 : undefined;
  const progress = async (msg: string) => {
    if (mode.sideband && mode.progress) for (const b of sideband(2, Buffer.from(msg), maxData)) await out(b);
  };
  await progress(`Enumerating objects: ${oids.length}, done.\r\n`);
  await forgetBodies(s);
  let last = 0;
  let pending = '';
  for await (const chunk of writePack(s, oids, (done, total) => {
    const pct = Math.floor((done * 100) / total);
    if (pct !== last && (pct % 10 === 0 || done === total)) {
      last = pct;
      pending = `Counting objects: ${pct}% (${done}/${total})${done === total ? ', done.\n' : '\r'}`;
    }
  })) {
    if (mode.sideband) await out(sidebandParts(1, chunk, maxData));
    else await out(chunk);
    if (pending) {
      await progress(pending);
      pending = '';
    }
  }
  if (mode.sideband) await out(FLUSH);
}

/** v0 stateless-RPC upload-pack request: wants [shallow] [deepen] flush haves (flush|done). */
export async function uploadPackV0(s: Store, body: Buffer, out: Sink): Promise<void> {
  const r = new PktReader(body);
  const a: FetchArgs = { wants: [], haves: [], shallows: [], depth: 0, done: false, caps: new Set() };
  for (;;) {
    const p = r.next();
    if (!p) throw new ProtocolError('request ended before flush');
    if (p.type === 'flush') break;
    if (p.type !== 'data') throw new ProtocolError('unexpected delimiter in want list');
    const line = lineText(p.data);
    if (line.startsWith('want ')) {
      if (a.wants.length === 0) for (const c of line.slice(46).split(' ')) if (c) a.caps.add(c);
      a.wants.push(parseOidArg(line, 'want '));
    } else if (line.startsWith('shallow ')) a.shallows.push(parseOidArg(line, 'shallow '));
    else if (line.startsWith('deepen ')) a.depth = parseDepth(line);
    else if (line.startsWith('deepen-since ') || line.startsWith('deepen-not ') || line.startsWith('filter '))
      throw new ProtocolError(`unsupported: ${line.split(' ')[0]}`);
    else throw new ProtocolError(`unexpected line "${line.slice(0, 60)}"`);
  }
  if (a.wants.length === 0) return; // nothing wanted: empty response, as git does
  await checkWants(s, a.wants);
  // With deepen, stateless fetch-pack first sends the want section alone and reads
  // back only the shallow list: anything more would be taken for the next round's.
  const wantsOnly = r.done;
  for (;;) {
    const p = r.next();
    if (!p) break;
    if (p.type === 'flush') continue;
    if (p.type !== 'data') throw new ProtocolError('unexpected delimiter in have list');
    const line = lineText(p.data);
    if (line.startsWith('have ')) a.haves.push(parseOidArg(line, 'have '));
    else if (line === 'done') {
      a.done = true;
      break;
    } else throw new ProtocolError(`unexpected line "${line.slice(0, 60)}"`);
  }
  const multiAck = a.caps.has('multi_ack_detailed') ? 'detailed' : a.caps.has('multi_ack') ? 'plain' : 'none';
  const common = await commonOf(s, a.haves);
  // fetch-pack reads a shallow section only when it asked to deepen.
  const deepening = a.depth > 0;
  const relative = a.caps.has('deepen-relative');

  // Enumerate first when the pack is coming: the shallow section needs its result.
  const result = a.done
    ? await enumerateObjects(s, {
        wants: a.wants,
        commonHaves: common,
        clientShallows: a.shallows,
        depth: a.depth,
        relative,
        includeTags: a.caps.has('include-tag') ? await tagRefs(s) : [],
      })
    : null;
  const info =
    result ?? (a.depth > 0 ? await shallowInfo(s, await wantedCommits(s, a.wants), a.depth, new Set(a.shallows), relative) : null);
  if (deepening) {
    // Stateless RPC resends the shallow section in every response (fetch-pack expects it).
    if (info) {
      for (const o of info.shallow) await out(pktLine(`shallow ${o}`));
      for (const o of info.unshallow) await out(pktLine(`unshallow ${o}`));
    }
    await out(FLUSH);
  }
  if (wantsOnly) return;
  for (const c of common) {
    if (multiAck === 'detailed') await out(pktLine(`ACK ${c} common`));
    else if (multiAck === 'plain') await out(pktLine(`ACK ${c} continue`));
  }
  if (!a.done) {
    if (multiAck === 'none' && common.length) await out(pktLine(`ACK ${common[0]}`));
    else await out(pktLine('NAK'));
    return;
  }
  if (common.length) await out(pktLine(`ACK ${common[common.length - 1]}`));
  else await out(pktLine('NAK'));
  const sb = a.caps.has('side-band-64k') ? 65520 : a.caps.has('side-band') ? 1000 : 0;
  await sendPack(s, result!.oids, out, { sideband: sb, progress: !a.caps.has('no-progress') });
}

/** Protocol v2 request: command=X, capabilities, delim, arguments, flush. */
export async function uploadPackV2(s: Store, body: Buffer, out: Sink): Promise<void> {
  const r = new PktReader(body);
  const first = r.next();
  if (!first) return; // an empty request is the client closing: nothing to say
  if (first.type !== 'data') throw new ProtocolError('expected command=');
  const cmdLine = lineText(first.data);
  if (!cmdLine.startsWith('command=')) throw new ProtocolError('expected command=');
  const command = cmdLine.slice(8);
  const caps: string[] = [];
  const args: string[] = [];
  let section: 'caps' | 'args' = 'caps';
  for (;;) {
    const p = r.next();
    if (!p) throw new ProtocolError('request ended before flush');
    if (p.type === 'flush') break;
    if (p.type === 'delim') {
      if (section === 'args') throw new ProtocolError('second delimiter');
      section = 'args';
      continue;
    }
    if (p.type !== 'data') throw new ProtocolError('unexpected packet');
    (section === 'caps' ? caps : args).push(lineText(p.data));
  }
  if (command === 'ls-refs') return lsRefs(s, args, out);
  if (command === 'fetch') return fetchV2(s, args, out);
  throw new ProtocolError(`unknown command "${command.slice(0, 40)}"`);
}

async function lsRefs(s: Store, args: string[], out: Sink): Promise<void> {
  let symrefs = false;
  let peelTags = false;
  let unborn = false;
  const prefixes: string[] = [];
  for (const a of args) {
    if (a === 'symrefs') symrefs = true;
    else if (a === 'peel') peelTags = true;
    else if (a === 'unborn') unborn = true;
    else if (a.startsWith('ref-prefix ')) prefixes.push(a.slice(11));
    else throw new ProtocolError(`unexpected ls-refs argument "${a.slice(0, 40)}"`);
  }
  const match = (name: string) => prefixes.length === 0 || prefixes.some((p) => name.startsWith(p));
  if (match('HEAD')) {
    const head = await headTarget(s.gitdir);
    const oid = head ? await resolve(s.gitdir, head) : null;
    const target = symrefs && head ? ` symref-target:${head}` : '';
    if (oid) await out(pktLine(`${oid} HEAD${target}`));
    else if (unborn && head) await out(pktLine(`unborn HEAD${target}`));
  }
  for (const ref of await listAllRefs(s)) {
    if (!match(ref.name)) continue;
    const peeled = peelTags && ref.peeled ? ` peeled:${ref.peeled}` : '';
    await out(pktLine(`${ref.oid} ${ref.name}${peeled}`));
  }
  await out(FLUSH);
}

async function fetchV2(s: Store, args: string[], out: Sink): Promise<void> {
  const a: FetchArgs = { wants: [], haves: [], shallows: [], depth: 0, done: false, caps: new Set() };
  for (const line of args) {
    if (line.startsWith('want ')) a.wants.push(parseOidArg(line, 'want '));
    else if (line.startsWith('have ')) a.haves.push(parseOidArg(line, 'have '));
    else if (line.startsWith('shallow ')) a.shallows.push(parseOidArg(line, 'shallow '));
    else if (line.startsWith('deepen ')) a.depth = parseDepth(line);
    else if (line === 'done') a.done = true;
    else if (['thin-pack', 'no-progress', 'include-tag', 'ofs-delta', 'deepen-relative', 'sideband-all', 'wait-for-done'].includes(line))
      a.caps.add(line);
    else throw new ProtocolError(`unsupported fetch argument "${line.slice(0, 40)}"`);
  }
  if (a.wants.length === 0) throw new ProtocolError('fetch without want');
  await checkWants(s, a.wants);
  const common = await commonOf(s, a.haves);
  if (!a.done) {
    // We never declare "ready" early: the client sends "done" when it runs out of haves.
    await out(pktLine('acknowledgments'));
    if (common.length) for (const c of common) await out(pktLine(`ACK ${c}`));
    else await out(pktLine('NAK'));
    await out(FLUSH);
    return;
  }
  const result = await enumerateObjects(s, {
    wants: a.wants,
    commonHaves: common,
    clientShallows: a.shallows,
    depth: a.depth,
    relative: a.caps.has('deepen-relative'),
    includeTags: a.caps.has('include-tag') ? await tagRefs(s) : [],
  });
  if (a.depth > 0 || a.shallows.length) {
    await out(pktLine('shallow-info'));
    for (const o of result.shallow) await out(pktLine(`shallow ${o}`));
    for (const o of result.unshallow) await out(pktLine(`unshallow ${o}`));
    await out(DELIM);
  }
  await out(pktLine('packfile'));
  await sendPack(s, result.oids, out, { sideband: 65520, progress: !a.caps.has('no-progress') });
}
