/**
 * Copying default config files into a working tree where they are missing: what `kith up`
 * and PID 1 do before anything starts, so every service finds a config even before storage
 * has published config.git. Existing files are never touched. (The policy that makes new
 * defaults part of config.git is storage's: platform/appliance.ts explains it.)
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileDurableSync } from '../durable.ts';

/** Every regular file under `dir`, relative path → bytes, sorted. */
export function readTree(dir: string, rel = ''): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) Object.assign(out, readTree(dir, r));
    else if (st.isFile()) out[r] = readFileSync(join(dir, r));
  }
  return out;
}

/**
 * Write each file that is missing under `to`; returns the relative paths written, sorted.
 * Each is written aside, synced and renamed: a power cut while seeding (first boot) leaves
 * a file whole or absent — absent is seeded next boot; a truncated one never would be.
 */
export function seedMissingFiles(to: string, files: Record<string, string | Uint8Array>): string[] {
  const written: string[] = [];
  for (const rel of Object.keys(files).sort()) {
    const full = join(to, rel);
    if (existsSync(full)) continue;
    mkdirSync(dirname(full), { recursive: true });
    writeFileDurableSync(full, files[rel]!);
    written.push(rel);
  }
  return written;
}
