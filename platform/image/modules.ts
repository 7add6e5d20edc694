/**
 * Kernel module load order, resolved at build time: there is no modprobe in an image, so
 * the builder reads each module's `depends=` (and softdep `pre:`) and lists modules so
 * that every module comes after what it needs. Pure: a lookup function in, an order out.
 */
import type { ModInfo } from './elf.ts';

/** Module names use '-' and '_' interchangeably; the kernel treats them as equal. */
export function normalizeModuleName(n: string): string {
  return n.replace(/-/g, '_');
}

export type Order = { ok: true; value: string[] } | { ok: false; error: string };

/**
 * Depth-first post-order from `wanted`, so dependencies load first. `lookup(name)` gives a
 * module's info or undefined when the module is not available (built in, or missing —
 * `builtin` says which names are built in and need no loading). Soft pre-dependencies
 * are loaded when available and skipped otherwise.
 */
export function loadOrder(wanted: string[], lookup: (name: string) => ModInfo | undefined, builtin: Set<string> = new Set()): Order {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, soft: boolean, path: string[]): string | undefined => {
    const name = normalizeModuleName(raw);
    if (state.get(name) === 'done' || builtin.has(name)) return undefined;
    if (state.get(name) === 'visiting') return `dependency cycle: ${[...path, name].join(' -> ')}`;
    const found = lookup(raw) ?? lookup(name);
    if (!found) return soft ? undefined : `module ${name} not found (needed by ${path.at(-1) ?? 'the image'})`;
    if (normalizeModuleName(found.name) !== name) return visit(found.name, soft, path); // reached by alias
    const info = found;
    state.set(name, 'visiting');
    for (const d of info.softPre) { const e = visit(d, true, [...path, name]); if (e) return e; }
    for (const d of info.depends) { const e = visit(d, false, [...path, name]); if (e) return e; }
    state.set(name, 'done');
    order.push(name);
    return undefined;
  };
  for (const w of wanted) {
    const err = visit(w, false, []);
    if (err) return { ok: false, error: err };
  }
  return { ok: true, value: order };
}

/** A lookup over a set of modules by name, then by alias (first name in sort order wins). */
export function moduleIndex(mods: ModInfo[]): (name: string) => ModInfo | undefined {
  const byName = new Map<string, ModInfo>();
  const byAlias = new Map<string, ModInfo>();
  for (const m of [...mods].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    byName.set(normalizeModuleName(m.name), m);
    for (const a of m.aliases) if (!byAlias.has(a)) byAlias.set(a, m);
  }
  return (name) => byName.get(normalizeModuleName(name)) ?? byAlias.get(name);
}
