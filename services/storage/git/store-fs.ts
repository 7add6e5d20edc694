// A file-system client for isomorphic-git that remembers, for one request, which
// loose objects and packs exist. isomorphic-git probes the loose path (a failing
// read) and lists objects/pack on every object read; on a 10,000-object clone those
// probes dominated. Listings are per request, so they are never stale for long:
// anything that adds objects (receive-pack) makes a fresh one afterwards.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

const LOOSE = /[\\/]objects[\\/]([0-9a-f]{2})[\\/]([0-9a-f]{38})$/;

function enoent(p: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`ENOENT: no such file, open '${p}'`);
  e.code = 'ENOENT';
  return e;
}

// isomorphic-git calls readFile() with no path to learn whether the fs is promise-based.
const PROBE_ERROR = Object.assign(new TypeError('path required'), { code: 'ERR_INVALID_ARG_TYPE' });

export function requestFs(): { promises: typeof fsp } {
  const listings = new Map<string, Promise<Set<string>>>();
  const dirStats = new Map<string, ReturnType<typeof fsp.stat>>();
  const list = (dir: string): Promise<Set<string>> => {
    let l = listings.get(dir);
    if (!l) {
      l = fsp.readdir(dir).then(
        (names) => new Set(names),
        () => new Set<string>(),
      );
      listings.set(dir, l);
    }
    return l;
  };
  const promises = Object.create(fsp) as typeof fsp & Record<string, unknown>;
  promises.readFile = (async (p: unknown, opts?: unknown) => {
    if (p === undefined) throw PROBE_ERROR;
    if (typeof p === 'string') {
      const m = LOOSE.exec(p);
      if (m && !(await list(path.dirname(p))).has(m[2])) throw enoent(p);
    }
    return fsp.readFile(p as string, opts as never);
  }) as typeof fsp.readFile;
  promises.readdir = (async (p: unknown, opts?: unknown) => {
    if (typeof p === 'string' && opts === undefined && /[\\/]objects[\\/]pack$/.test(p)) {
      const l = await list(p);
      if (l.size === 0) await fsp.access(p); // keep ENOENT for a missing directory
      return [...l];
    }
    return fsp.readdir(p as string, opts as never);
  }) as typeof fsp.readdir;
  // Every isomorphic-git command stats the gitdir to see whether it is a directory.
  promises.stat = ((p: unknown, opts?: unknown) => {
    if (typeof p === 'string' && opts === undefined && p.endsWith('.git')) {
      let st = dirStats.get(p);
      if (!st) dirStats.set(p, (st = fsp.stat(p)));
      return st;
    }
    return fsp.stat(p as string, opts as never);
  }) as typeof fsp.stat;
  // isomorphic-git binds `fs.promises` only when the property is enumerable.
  return { promises };
}

