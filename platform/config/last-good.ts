/**
 * Last good config: after a config loads and validates, the exact files it was read from
 * are kept in the data folder, so a service whose live config is later broken (by hand,
 * outside a validated push) still starts with what last worked, and says why.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../durable.ts';
import { memoryConfigSource } from './fs-source.ts';
import type { ConfigSource } from './spec.ts';

const FILE = 'last-good-config.json';

export interface RecordingSource extends ConfigSource {
  /** Every file the loader read, path → text. */
  files(): Record<string, string>;
}

/** Wrap a source so the files a load reads can be saved as the last good snapshot. */
export function recordingSource(inner: ConfigSource): RecordingSource {
  const seen: Record<string, string> = {};
  return {
    async read(p) {
      const text = await inner.read(p);
      if (text !== undefined) seen[p] = text;
      return text;
    },
    list: (d) => inner.list(d),
    files: () => ({ ...seen }),
  };
}

export async function saveLastGood(dataDir: string, files: Record<string, string>): Promise<void> {
  // 0600: config files can hold secrets (TSIG keys, password hashes).
  await writeFileDurable(path.join(dataDir, FILE), JSON.stringify({ savedAt: new Date().toISOString(), files }), { mode: 0o600 });
}

export async function loadLastGood(dataDir: string): Promise<ConfigSource | undefined> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, FILE), 'utf8')) as { files?: Record<string, string> };
    if (!raw.files || typeof raw.files !== 'object') return undefined;
    return memoryConfigSource(raw.files);
  } catch {
    return undefined;
  }
}
