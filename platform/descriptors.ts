/**
 * Every service's declaration as data — what a supervisor needs to plan and seed (name,
 * listeners, needs, node flags, default config files) — read without loading any
 * service's code into the supervisor: a child Node imports the declarations, prints them
 * as JSON and exits. Importing them here would keep all four services' code (parsers,
 * zod schemas, protocol stacks) in the supervisor's heap for its whole life: ~60 MB of
 * `kith up`'s VmRSS, measured by bench/memory (docs/decisions.md).
 */
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import * as path from 'node:path';
import type { ServiceDescriptor } from './appliance.ts';

export type DescribedService = ServiceDescriptor & { config: { defaults: Record<string, string> } };

const CHILD = (servicesModule: string, repoRoot: string) => `
const { loadDefinitions } = await import(${JSON.stringify(servicesModule)});
const defs = await loadDefinitions(${JSON.stringify(repoRoot)});
process.stdout.write(JSON.stringify(defs.map((d) => ({
  name: d.name, description: d.description, listeners: d.listeners,
  ...(d.writableConfig !== undefined ? { writableConfig: d.writableConfig } : {}),
  ...(d.needs ? { needs: d.needs } : {}),
  ...(d.nodeFlags ? { nodeFlags: d.nodeFlags } : {}),
  ...(d.env ? { env: d.env } : {}),
  config: { defaults: d.config.defaults },
}))));
`;

/** The declarations of every service under repoRoot/services, in slot order (platform/services.ts). */
export function describeServices(repoRoot: string, node = process.execPath): Promise<DescribedService[]> {
  // From repoRoot, not this file's folder: the same whether kith runs from source or bundled.
  const servicesModule = pathToFileURL(path.join(path.resolve(repoRoot), 'platform', 'services.ts')).href;
  return new Promise((resolve, reject) => {
    execFile(node, ['--input-type=module', '--disable-warning=ExperimentalWarning', '-e', CHILD(servicesModule, path.resolve(repoRoot))], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`could not read the service declarations under ${repoRoot}/services: ${stderr.trim() || err.message}`));
      try {
        resolve(JSON.parse(stdout) as DescribedService[]);
      } catch (e) {
        reject(new Error(`service declarations: not JSON (${(e as Error).message}): ${stdout.slice(0, 200)}`));
      }
    });
  });
}
