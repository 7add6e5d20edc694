/**
 * How storage checks a config.git commit: every registered service's spec (the registry
 * built from services/<name>/config.ts, platform/config/registry.ts) and the cross-service
 * rules, against this machine's facts. Storage imports no service's code: the registry is
 * its own bundle, loaded at start.
 */
import { specRegistry, type SpecRegistry } from '../../../platform/config/registry.ts';
import { treeValidator, type TreeValidator } from '../../../platform/config/validate-tree.ts';
import type { ServiceContext } from '../../../platform/service.ts';
import type { StorageConfig } from './schema.ts';

export interface ConfigValidation {
  validate: TreeValidator;
  /** The registry, or undefined when it could not be loaded (every config push is then refused, naming why). */
  specs?: SpecRegistry;
}

/**
 * The validator. A registry that cannot be loaded must not stop storage from serving git:
 * config pushes are refused with the reason, everything else works.
 */
export async function configValidator(ctx: ServiceContext<StorageConfig>): Promise<ConfigValidation> {
  try {
    const specs = await specRegistry();
    ctx.log.info('config registry loaded', { services: Object.keys(specs) });
    return { validate: treeValidator(specs, ctx.facts), specs };
  } catch (err) {
    const reason = (err as Error).message;
    ctx.log.error('config registry unavailable: config pushes will be refused', { error: reason });
    return { validate: async () => ({ ok: false, issues: [{ file: 'storage', message: `storage cannot check configs: ${reason}` }] }) };
  }
}
