/**
 * A ConfigSource over a folder on disk (the config working tree). Paths are confined to
 * the tree: '..', absolute paths and symlinks that lead outside are refused. Bytes that are
 * not UTF-8 are kept (see text.ts), never replaced by U+FFFD.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ConfigSource } from './spec.ts';
import { decodeConfigText } from './text.ts';

export function fsConfigSource(root: string): ConfigSource {
  const base = path.resolve(root);
  const resolve = (rel: string): string | undefined => {
    if (rel.includes('\0') || path.isAbsolute(rel)) return undefined;
    const full = path.resolve(base, rel);
    if (full !== base && !full.startsWith(base + path.sep)) return undefined;
    return full;
  };
  const inside = async (full: string): Promise<boolean> => {
    const real = await fsp.realpath(full).catch(() => undefined);
    const realBase = await fsp.realpath(base).catch(() => base);
    return real !== undefined && (real === realBase || real.startsWith(realBase + path.sep));
  };
  return {
    async read(rel) {
      const full = resolve(rel);
      if (!full || !(await inside(full))) return undefined;
      try {
        return decodeConfigText(await fsp.readFile(full));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return undefined;
        throw err;
      }
    },
    async list(rel) {
      const full = resolve(rel);
      if (!full || !(await inside(full))) return [];
      try {
        const entries = await fsp.readdir(full, { withFileTypes: true });
        return entries.map((e) => (e.isDirectory() ? `${e.name}/` : e.name)).sort();
      } catch {
        return [];
      }
    },
  };
}

/** A ConfigSource over an in-memory map of path → text (tests, and trees read from git). */
export function memoryConfigSource(files: Record<string, string>): ConfigSource {
  return {
    async read(rel) {
      return Object.hasOwn(files, rel) ? files[rel] : undefined;
    },
    async list(rel) {
      const prefix = rel === '' || rel.endsWith('/') ? rel : `${rel}/`;
      const names = new Set<string>();
      for (const p of Object.keys(files)) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length);
        const slash = rest.indexOf('/');
        names.add(slash === -1 ? rest : rest.slice(0, slash + 1));
      }
      return [...names].sort();
    },
  };
}
