/**
 * Validating a whole config tree: every registered service's spec, then the rules that
 * span services (ConfigSpec.crossCheck, given every service's view). Pure over its inputs:
 * the registry, the tree and the machine facts are all passed in.
 */
import type { ConfigIssue, ConfigSource, MachineFacts } from './spec.ts';
import type { SpecRegistry } from './registry.ts';

export interface TreeValidation {
  ok: boolean;
  issues: ConfigIssue[];
}

export type TreeValidator = (source: ConfigSource) => Promise<TreeValidation>;

export async function validateConfigTree(source: ConfigSource, specs: SpecRegistry, facts: MachineFacts): Promise<TreeValidation> {
  const issues: ConfigIssue[] = [];
  const configs = new Map<string, unknown>();
  for (const [name, spec] of Object.entries(specs)) {
    const r = await spec.load(source, facts).catch((err: Error) => ({ ok: false as const, issues: [{ file: name, message: `cannot be read: ${err.message}` }] }));
    if (r.ok) configs.set(name, r.value);
    else issues.push(...r.issues);
  }
  const views: Record<string, unknown> = {};
  for (const [name, value] of configs) {
    const view = specs[name]!.view;
    if (view) views[name] = view(value);
  }
  for (const [name, value] of configs) {
    try {
      issues.push(...(specs[name]!.crossCheck?.(value, views) ?? []));
    } catch (err) {
      issues.push({ file: name, message: `cross-service check failed: ${(err as Error).message}` });
    }
  }
  return { ok: issues.length === 0, issues };
}

/** A validator bound to a registry and the machine's facts (read at each call). */
export function treeValidator(specs: SpecRegistry, facts: () => MachineFacts): TreeValidator {
  return (source) => validateConfigTree(source, specs, facts());
}
