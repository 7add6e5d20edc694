/**
 * Build every service bundle once before the suites that start them (`kith up --no-build`),
 * and kith up's own supervisor and pairing bundles (which kith up would otherwise build on
 * first use, in several suites at once).
 */
import { buildAll } from '../installer/commands/build.ts';
import { buildUpBundles } from '../installer/up/bundles.ts';

export default async function setup(): Promise<void> {
  await Promise.all([buildAll(), buildUpBundles()]);
}
