/**
 * The calendar's data as it lives in the versioned store, and the in-memory index that
 * answers queries without reading it:
 *
 *   <user>/<collection>/collection.json   what the collection is (calendar / address book),
 *                                         its properties (displayname, color, dead props)
 *   <user>/<collection>/items/<name>      one calendar object (.ics) or vCard per file
 *
 * Every change is one commit (the store's history is the undo log); the branch head is the
 * sync token (RFC 6578), so tokens survive restarts. The index holds per item only what
 * queries need (blob = ETag, UID, component, time bounds), rebuilt from the store at start
 * (helped by a cache file in the data folder) and kept current by long-polling the store's
 * watch. Writes are made conditional on the head the index reflects, so a check against
 * the index (If-Match, UID uniqueness) and the write are one atomic step; when someone else
 * moved the head (an owner's git push, a restore), the index catches up and the write is
 * tried again. Item texts are read through a bounded cache (memory, then data folder).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../../platform/log.ts';
import { StoreClientError, type StoreBatchChange, type StoreClient, type StoreHistoryEntry } from '../../../platform/store-client.ts';

/** What the calendar needs of the store (platform/store-client.ts; store/memory-client.ts in tests). */
export type CalendarStore = Pick<StoreClient, 'list' | 'read' | 'batch' | 'watch'>;

export type CollectionType = 'calendar' | 'addressbook';

export interface CollectionMeta {
  type: CollectionType;
  /** Properties by Clark name ({ns}name) → XML of the value (inner content). */
  props: Record<string, string>;
  /** For calendars: VEVENT, VTODO, VJOURNAL, VFREEBUSY. */
  components?: string[];
}

export interface ItemMeta {
  blob: string;
  size: number;
  uid: string;
  comp?: string;
  minStart?: number;
  maxEnd?: number;
  /** VEVENT instances [start, end, ...] complete up to horizon (see CalendarSummary). */
  spans?: number[];
  horizon?: number;
  /** Some time is floating or a date (read in the calendar's zone). */
  floating?: boolean;
}

export interface Collection {
  owner: string;
  name: string;
  meta: CollectionMeta;
  items: Map<string, ItemMeta>;
  /** The last commit that changed anything in the collection (CTag). */
  lastCommit: string;
}

/** What the service computes from an item's text: the index summary (or why it is refused). */
export type Summarize = (type: CollectionType, text: string) => Omit<ItemMeta, 'blob' | 'size'> | undefined;

export const META_FILE = 'collection.json';
const ITEMS = 'items';

export const collectionKey = (owner: string, name: string) => `${owner}/${name}`;
export const itemPath = (owner: string, coll: string, item: string) => `${owner}/${coll}/${ITEMS}/${item}`;
export const metaPath = (owner: string, coll: string) => `${owner}/${coll}/${META_FILE}`;

type ParsedPath = { owner: string; coll: string; kind: 'meta' } | { owner: string; coll: string; kind: 'item'; item: string };
export function parseStorePath(p: string): ParsedPath | undefined {
  const s = p.split('/');
  if (s.length === 3 && s[2] === META_FILE) return { owner: s[0]!, coll: s[1]!, kind: 'meta' };
  if (s.length === 4 && s[2] === ITEMS) return { owner: s[0]!, coll: s[1]!, kind: 'item', item: s[3]! };
  return undefined;
}

export class WriteConflict extends Error {
  override name = 'WriteConflict';
}

/** A prepared write: the files to change, the message, and the index entries of written items. */
export interface Mutation<R> {
  changes: StoreBatchChange[];
  message: string;
  /** Index entries for written item paths (blob and size are filled in). */
  items?: Record<string, Omit<ItemMeta, 'blob' | 'size'>>;
  result: R;
}

interface Persisted {
  version: 2;
  head: string | null;
  collections: Array<{ owner: string; name: string; meta: CollectionMeta; lastCommit: string; items: Array<[string, ItemMeta]> }>;
}

export interface RepositoryOptions {
  client: CalendarStore;
  /** The store repository (default 'calendar'). */
  repo?: string;
  dataDir: string;
  log: Logger;
  summarize: Summarize;
  /** Bytes of item text kept in memory. */
  memoryCacheBytes?: number;
}

export class Repository {
  readonly collections = new Map<string, Collection>();
  head: string | undefined;
  /** Commits applied since start: commit → store paths it changed (for sync-collection). */
  private readonly log: Array<{ commit: string; paths: string[] }> = [];
  private logBase: string | undefined;
  private readonly texts = new Map<string, string>();
  private textBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly cacheDir: string;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<() => void>();
  /** Blob cache folders known to exist (256 at most). */
  private readonly blobDirs = new Set<string>();
  /** Cache writes not awaited by the change that made them; a clean stop finishes them. */
  private readonly cacheWrites = new Set<Promise<void>>();

  private readonly opts: RepositoryOptions;

  constructor(opts: RepositoryOptions) {
    this.opts = opts;
    this.cacheDir = path.join(opts.dataDir, 'cache');
  }

  private get repo(): string {
    return this.opts.repo ?? 'calendar';
  }

  /** Load the cached index, then catch up with the store. */
  async open(): Promise<void> {
    await fsp.mkdir(path.join(this.cacheDir, 'blobs'), { recursive: true });
    const cached = await fsp.readFile(path.join(this.cacheDir, 'index.json'), 'utf8').then((t) => JSON.parse(t) as Persisted, () => undefined);
    if (cached?.version === 2) {
      for (const c of cached.collections) this.collections.set(collectionKey(c.owner, c.name), { owner: c.owner, name: c.name, meta: c.meta, lastCommit: c.lastCommit, items: new Map(c.items) });
      this.head = cached.head ?? undefined;
    }
    await this.exclusive(() => this.resync());
    this.logBase = this.head;
  }

  /** Long-poll the store's watch and apply what others commit, until stop(). */
  startWatching(): void {
    const loop = async () => {
      while (!this.stopped) {
        try {
          if (this.head === undefined) {
            // An empty store: a watch without `since` only sees the *next* commit, so one
            // made before the watch reached the store would be missed. Look at the head
            // first, and again at least every 5 s.
            const l = await this.opts.client.list(this.repo, '', { recursive: false });
            if (l.commit !== null) {
              await this.exclusive(() => this.resync());
              continue;
            }
          }
          const r = await this.opts.client.watch(this.repo, { since: this.head, timeoutS: this.head === undefined ? 5 : 25, signal: this.abort.signal });
          if (this.stopped) return;
          if (r && r.head !== (this.head ?? null)) {
            await this.exclusive(async () => {
              // Follow on directly when the commits start at our head (our own writes may
              // have moved it meanwhile: then ask again from where we are).
              if (r.complete && r.commits.length > 0 && (r.commits[0]!.parents[0] ?? undefined) === this.head) {
                for (const c of r.commits) await this.applyCommit(c);
              } else await this.catchUp();
            });
          }
        } catch (err) {
          if (this.stopped) return;
          this.opts.log.warn('store watch failed; retrying in 2 s', { error: String(err) });
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.persistTimer) clearTimeout(this.persistTimer);
    await Promise.all([...this.cacheWrites]);
    return this.persist();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Run `fn` with no write or catch-up in between. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Prepare a write against the current index and commit it, conditional on the head;
   * when the head moved underneath, catch up and prepare again (three tries).
   */
  mutate<R>(prepare: () => Promise<Mutation<R> | R> | Mutation<R> | R, isMutation: (x: Mutation<R> | R) => x is Mutation<R>): Promise<R> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        const m = await prepare();
        if (!isMutation(m)) return m;
        try {
          const r = await this.opts.client.batch(this.repo, m.changes, { ...(this.head ? { ifMatch: this.head } : {}), message: m.message });
          await this.applyLocal(r.commit, m, r.blobs);
          return m.result;
        } catch (err) {
          if (err instanceof StoreClientError && err.status === 412 && attempt < 2) {
            await this.catchUp();
            continue;
          }
          throw err;
        }
      }
    });
  }

  private async applyLocal(commit: string, m: Mutation<unknown>, blobs: Record<string, string>): Promise<void> {
    const paths: string[] = [];
    for (const c of m.changes) {
      paths.push(c.path);
      const p = parseStorePath(c.path);
      if (!p) continue;
      const key = collectionKey(p.owner, p.coll);
      if (p.kind === 'meta') {
        if (c.content === null) this.collections.delete(key);
        else {
          const meta = JSON.parse(Buffer.from(c.content).toString('utf8')) as CollectionMeta;
          const existing = this.collections.get(key);
          if (existing) existing.meta = meta;
          else this.collections.set(key, { owner: p.owner, name: p.coll, meta, items: new Map(), lastCommit: commit });
        }
      } else {
        const coll = this.collections.get(key);
        if (!coll) continue;
        if (c.content === null) coll.items.delete(p.item);
        else {
          const text = Buffer.from(c.content).toString('utf8');
          const blob = blobs[c.path]!;
          const summary = m.items?.[c.path] ?? this.opts.summarize(coll.meta.type, text) ?? { uid: '' };
          coll.items.set(p.item, { ...summary, blob, size: Buffer.byteLength(text) });
          this.remember(blob, text);
          const w = this.writeBlobCache(blob, text).finally(() => this.cacheWrites.delete(w));
          this.cacheWrites.add(w);
        }
      }
      const coll = this.collections.get(key);
      if (coll) coll.lastCommit = commit;
    }
    this.head = commit;
    this.record(commit, paths);
  }

  private record(commit: string, paths: string[]): void {
    this.log.push({ commit, paths });
    if (this.log.length > 50_000) {
      const dropped = this.log.splice(0, 10_000);
      this.logBase = dropped[dropped.length - 1]!.commit;
    }
    this.schedulePersist();
    for (const l of this.listeners) l();
  }

  /** Apply the commits after our head (or resync everything when they cannot be followed). */
  private async catchUp(): Promise<void> {
    // From an empty index, a watch without `since` waits for the *next* commit and would
    // miss those made since the listing: list again instead.
    if (this.head === undefined) return this.resync();
    for (let rounds = 0; rounds < 1000; rounds++) {
      // A long-poll that answers at once when the head is past ours (1 s when it is not).
      const r = await this.opts.client.watch(this.repo, { since: this.head, timeoutS: 1 });
      if (!r || r.commits.length === 0) return;
      if (!r.complete && this.head !== undefined && r.commits[0]!.parents[0] !== this.head) {
        this.opts.log.warn('store history moved past what the index can follow; rebuilding the index', { head: r.head });
        await this.resync();
        return;
      }
      for (const c of r.commits) await this.applyCommit(c);
      if (r.complete) return;
    }
  }

  private async applyCommit(c: StoreHistoryEntry): Promise<void> {
    const paths: string[] = [];
    const metaChanges = (c.changes ?? []).filter((x) => parseStorePath(x.path)?.kind === 'meta');
    const itemChanges = (c.changes ?? []).filter((x) => parseStorePath(x.path)?.kind === 'item');
    // Read the new texts a few at a time first (a pushed commit may hold a thousand).
    const texts = new Map<string, string | undefined>();
    const wanted = itemChanges.filter((ch) => ch.type !== 'delete' && ch.blob);
    for (let i = 0; i < wanted.length; i += 16) {
      await Promise.all(wanted.slice(i, i + 16).map(async (ch) => texts.set(ch.path, await this.textAt(ch.path, ch.blob!, c.commit))));
    }
    for (const ch of [...metaChanges, ...itemChanges]) {
      const p = parseStorePath(ch.path)!;
      paths.push(ch.path);
      const key = collectionKey(p.owner, p.coll);
      if (p.kind === 'meta') {
        if (ch.type === 'delete') this.collections.delete(key);
        else {
          const meta = await this.readMeta(ch.path, c.commit);
          if (!meta) continue;
          const existing = this.collections.get(key);
          if (existing) existing.meta = meta;
          else this.collections.set(key, { owner: p.owner, name: p.coll, meta, items: new Map(), lastCommit: c.commit });
        }
      } else {
        const coll = this.collections.get(key);
        if (!coll || p.kind !== 'item') continue;
        if (ch.type === 'delete') coll.items.delete(p.item);
        else if (ch.blob) {
          const text = texts.get(ch.path);
          if (text === undefined) continue;
          const s = this.opts.summarize(coll.meta.type, text);
          coll.items.set(p.item, { ...(s ?? { uid: '' }), blob: ch.blob, size: Buffer.byteLength(text) });
        }
      }
      const coll = this.collections.get(key);
      if (coll) coll.lastCommit = c.commit;
    }
    this.head = c.commit;
    this.record(c.commit, paths);
  }

  /** Rebuild the index from a full listing of the store (what changed since the cache is read). */
  private async resync(): Promise<void> {
    const listing = await this.opts.client.list(this.repo, '');
    const head = listing.commit ?? undefined;
    if (head === this.head && head !== undefined) return;
    const byColl = new Map<string, { meta?: string; items: Map<string, string> }>();
    for (const e of listing.entries) {
      const p = e.type === 'blob' ? parseStorePath(e.path) : undefined;
      if (!p) continue;
      const key = collectionKey(p.owner, p.coll);
      const slot = byColl.get(key) ?? { items: new Map<string, string>() };
      if (p.kind === 'meta') slot.meta = e.path;
      else slot.items.set(p.item, e.blob);
      byColl.set(key, slot);
    }
    const next = new Map<string, Collection>();
    let fetched = 0;
    for (const [key, slot] of byColl) {
      if (!slot.meta) continue;
      const [owner, name] = key.split('/') as [string, string];
      const old = this.collections.get(key);
      const meta = await this.readMeta(slot.meta, head);
      if (!meta) continue;
      const coll: Collection = { owner, name, meta, items: new Map(), lastCommit: old?.lastCommit ?? head ?? '' };
      let changed = !old || JSON.stringify(old.meta) !== JSON.stringify(meta) || old.items.size !== slot.items.size;
      const pending: Array<[string, string]> = [];
      for (const [item, blob] of slot.items) {
        const known = old?.items.get(item);
        if (known && known.blob === blob) coll.items.set(item, known);
        else {
          changed = true;
          pending.push([item, blob]);
        }
      }
      // A few reads at a time: the first start over a large store reads every file once.
      for (let i = 0; i < pending.length; i += 16) {
        await Promise.all(pending.slice(i, i + 16).map(async ([item, blob]) => {
          const text = await this.textAt(itemPath(owner, name, item), blob, head);
          if (text === undefined) return;
          fetched++;
          const s = this.opts.summarize(meta.type, text);
          coll.items.set(item, { ...(s ?? { uid: '' }), blob, size: Buffer.byteLength(text) });
        }));
      }
      if (changed && head) coll.lastCommit = head;
      next.set(key, coll);
    }
    this.collections.clear();
    for (const [k, v] of next) this.collections.set(k, v);
    this.head = head;
    if (fetched > 0) this.opts.log.info('index rebuilt from the store', { head, collections: next.size, itemsRead: fetched });
    this.log.length = 0;
    this.logBase = head;
    this.schedulePersist();
  }

  private async readMeta(p: string, at: string | undefined): Promise<CollectionMeta | undefined> {
    const r = await this.opts.client.read(this.repo, p, at ? { at } : {});
    if (!r) return undefined;
    try {
      const m = JSON.parse(Buffer.from(r.content).toString('utf8')) as CollectionMeta;
      return m.type === 'calendar' || m.type === 'addressbook' ? { type: m.type, props: m.props ?? {}, ...(m.components ? { components: m.components } : {}) } : undefined;
    } catch {
      this.opts.log.warn('unreadable collection file in the store: ignored', { path: p });
      return undefined;
    }
  }

  // ---- item texts ----

  private remember(blob: string, text: string): void {
    const max = this.opts.memoryCacheBytes ?? 8 * 1024 * 1024;
    if (text.length > max / 8) return;
    if (this.texts.has(blob)) {
      this.texts.delete(blob);
      this.texts.set(blob, text);
      return;
    }
    this.texts.set(blob, text);
    this.textBytes += text.length;
    while (this.textBytes > max) {
      const [k, v] = this.texts.entries().next().value as [string, string];
      this.texts.delete(k);
      this.textBytes -= v.length;
    }
  }

  private blobFile(blob: string): string {
    return path.join(this.cacheDir, 'blobs', blob.slice(0, 2), blob);
  }

  private async writeBlobCache(blob: string, text: string): Promise<void> {
    const file = this.blobFile(blob);
    try {
      const dir = path.dirname(file);
      if (!this.blobDirs.has(dir)) {
        await fsp.mkdir(dir, { recursive: true });
        this.blobDirs.add(dir);
      }
      const tmp = `${file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, sealCacheText(text));
      await fsp.rename(tmp, file);
    } catch {
      // A cache: a failed write only means reading the store next time.
    }
  }

  /** The text of `path` whose blob is `blob` (memory, data-folder cache, then the store at `at`). */
  async textAt(p: string, blob: string, at?: string): Promise<string | undefined> {
    const hit = this.texts.get(blob);
    if (hit !== undefined) return hit;
    // A sealed service cannot fsync: after a power cut (a VM killed) the file may be there
    // with nothing or part of the text in it. Only a file whose checksum holds is used.
    const cached = await fsp.readFile(this.blobFile(blob), 'utf8').then(openCacheText, () => undefined);
    if (cached !== undefined) {
      this.remember(blob, cached);
      return cached;
    }
    const r = await this.opts.client.read(this.repo, p, at ? { at } : {});
    if (!r) return undefined;
    const text = Buffer.from(r.content).toString('utf8');
    if (r.blob === blob) {
      this.remember(blob, text);
      await this.writeBlobCache(blob, text);
    }
    return text;
  }

  // ---- sync (RFC 6578) ----

  /**
   * Store paths under `prefix` changed after commit `since`, from the log kept since start,
   * else by comparing the listing at `since` with now. Undefined: `since` is not a commit
   * of this store (an invalid or foreign token).
   */
  async changedSince(since: string, prefix: string): Promise<Set<string> | undefined> {
    if (since === this.head) return new Set();
    const at = this.log.findIndex((e) => e.commit === since);
    if (at !== -1 || since === this.logBase) {
      const out = new Set<string>();
      for (const e of this.log.slice(at + 1)) for (const p of e.paths) if (p.startsWith(prefix)) out.add(p);
      return out;
    }
    let old;
    try {
      old = await this.opts.client.list(this.repo, prefix.replace(/\/$/, ''), { at: since });
    } catch {
      return undefined;
    }
    if (old.commit !== since) return undefined;
    const out = new Set<string>();
    const now = new Map<string, string>();
    const p = parseStorePath(prefix + 'items/x');
    const coll = p ? this.collections.get(collectionKey(p.owner, p.coll)) : undefined;
    for (const [item, m] of coll?.items ?? []) now.set(itemPath(p!.owner, p!.coll, item), m.blob);
    const before = new Map(old.entries.filter((e) => e.type === 'blob' && parseStorePath(e.path)?.kind === 'item').map((e) => [e.path, e.blob]));
    for (const [k, v] of now) if (before.get(k) !== v) out.add(k);
    for (const k of before.keys()) if (!now.has(k)) out.add(k);
    return out;
  }

  // ---- the cache file ----

  private schedulePersist(): void {
    if (this.persistTimer || this.stopped) return;
    // The file is the whole index (megabytes for 10 000 events): written at most once a
    // minute and at stop. A crash loses at most that minute, which the next start reads
    // again from the store (only the items whose blob changed).
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persist();
    }, 60_000);
    this.persistTimer.unref?.();
  }

  private async persist(): Promise<void> {
    const body: Persisted = {
      version: 2,
      head: this.head ?? null,
      collections: [...this.collections.values()].map((c) => ({ owner: c.owner, name: c.name, meta: c.meta, lastCommit: c.lastCommit, items: [...c.items] })),
    };
    const file = path.join(this.cacheDir, 'index.json');
    try {
      await fsp.writeFile(`${file}.tmp`, JSON.stringify(body));
      await fsp.rename(`${file}.tmp`, file);
    } catch (err) {
      this.opts.log.warn('could not save the index cache (it is rebuilt from the store)', { error: String(err) });
    }
  }
}

/** A cached item text as written to its file: a first line with the text's SHA-256, then the text. */
const CACHE_MAGIC = 'kith-text-sha256 ';

export function sealCacheText(text: string): string {
  return `${CACHE_MAGIC}${createHash('sha256').update(text).digest('hex')}\n${text}`;
}

/** The text of a cache file, or undefined when it is torn, empty or of another format (then the store is read). */
export function openCacheText(file: string): string | undefined {
  const nl = file.indexOf('\n');
  if (!file.startsWith(CACHE_MAGIC) || nl !== CACHE_MAGIC.length + 64) return undefined;
  const text = file.slice(nl + 1);
  return createHash('sha256').update(text).digest('hex') === file.slice(CACHE_MAGIC.length, nl) ? text : undefined;
}
