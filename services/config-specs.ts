/**
 * Every service's config spec, in one place: the storage service validates a push to
 * config.git against all of them (and against the cross-service rules) before it accepts
 * it, so an accepted config never leaves a service unable to start.
 */
import type { ConfigIssue, ConfigSource, ConfigSpec } from '../platform/config/spec.ts';
import { dnsConfig } from './dns/config.ts';
import { storageConfig } from './storage/config/schema.ts';
import calendarConfig from './calendar/config.ts';

export const configSpecs: Record<string, ConfigSpec<unknown>> = {
  storage: storageConfig as ConfigSpec<unknown>,
  dns: dnsConfig as ConfigSpec<unknown>,
  calendar: calendarConfig as ConfigSpec<unknown>,
};

/**
 * Rules that span services, given every service's validated config. Mail will add "each
 * mail domain has a DNS zone the appliance serves" here when the mail service lands.
 */
export type CrossRule = (configs: Record<string, unknown>) => ConfigIssue[];
export const crossRules: CrossRule[] = [];

export interface TreeValidation {
  ok: boolean;
  issues: ConfigIssue[];
}

/** Validate a whole config tree: every service's spec, then the cross-service rules. */
export async function validateConfigTree(source: ConfigSource): Promise<TreeValidation> {
  const issues: ConfigIssue[] = [];
  const configs: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(configSpecs)) {
    const r = await spec.load(source).catch((err: Error) => ({ ok: false as const, issues: [{ file: name, message: `cannot be read: ${err.message}` }] }));
    if (r.ok) configs[name] = r.value;
    else issues.push(...r.issues);
  }
  if (issues.length === 0) for (const rule of crossRules) issues.push(...rule(configs));
  return { ok: issues.length === 0, issues };
}
