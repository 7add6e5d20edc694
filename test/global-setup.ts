/** Build every service bundle once before the suites that start them (`kith up --no-build`). */
import { buildAll } from '../installer/commands/build.ts';

export default async function setup(): Promise<void> {
  await buildAll();
}
