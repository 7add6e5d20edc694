/**
 * Which services exist: one folder per service under services/, each with a main.ts
 * declaration. Nothing is listed that has not been built, so `kith up` never fakes one.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

/** Fixed order, so each service keeps its port block under `kith up --port-base`. */
export const SERVICE_ORDER = ['storage', 'dns', 'mail', 'calendar'] as const;

export interface ServiceEntry {
  name: string;
  entry: string;
  /** Position in the port layout. */
  slot: number;
}

export function discoverServices(repoRoot: string): ServiceEntry[] {
  const dir = path.join(repoRoot, 'services');
  const names = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'main.ts'))).map((d) => d.name)
    : [];
  const slotOf = (n: string) => {
    const i = (SERVICE_ORDER as readonly string[]).indexOf(n);
    return i === -1 ? SERVICE_ORDER.length + names.filter((x) => !(SERVICE_ORDER as readonly string[]).includes(x)).sort().indexOf(n) : i;
  };
  return names.map((name) => ({ name, entry: path.join(dir, name, 'main.ts'), slot: slotOf(name) })).sort((a, b) => a.slot - b.slot);
}
