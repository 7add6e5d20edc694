/**
 * First-boot config seeding: the image carries the default config tree read-only
 * (/kith/config, every service's config.defaults); PID 1 copies each file that is missing
 * onto the data partition (/data/config). Existing files are never touched: the owner's
 * pushes win, and a service added by an image update still gets its defaults.
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Copy every regular file of `from` missing under `to`; returns the relative paths copied. */
export function seedTree(from: string, to: string, rel = ''): string[] {
  const copied: string[] = [];
  for (const name of readdirSync(join(from, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(from, r));
    if (st.isDirectory()) copied.push(...seedTree(from, to, r));
    else if (st.isFile() && !existsSync(join(to, r))) {
      mkdirSync(dirname(join(to, r)), { recursive: true });
      copyFileSync(join(from, r), join(to, r));
      copied.push(r);
    }
  }
  return copied;
}
