/**
 * Build every service bundle once before the suites that start them (`kith up --no-build`),
 * and kith up's own supervisor and pairing bundles (which kith up would otherwise build on
 * first use, in several suites at once).
 *
 * And one temp folder for the whole run: the workers inherit its TMPDIR, so every folder a
 * suite makes (os.tmpdir(), mktemp) lands in it, and the teardown removes them all — suites
 * that stop early or forget no longer leave kith-* folders behind in /tmp. KITH_KEEP_TMP=1
 * keeps it (its path is printed) to look at after a failure.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildAll } from '../installer/commands/build.ts';
import { buildUpBundles } from '../installer/up/bundles.ts';

export default async function setup(): Promise<() => void> {
  const runTmp = mkdtempSync(path.join(tmpdir(), 'kith-tests-'));
  // As /tmp itself: daemons that drop to their own user (nsd, dnsmasq, dbus, avahi) reach their folders.
  chmodSync(runTmp, 0o1777);
  process.env.TMPDIR = runTmp;
  try {
    await Promise.all([buildAll(), buildUpBundles()]);
  } catch (e) {
    // No teardown runs when setup throws: the folder goes here.
    rmSync(runTmp, { recursive: true, force: true });
    throw e;
  }
  return () => {
    if (process.env.KITH_KEEP_TMP === '1') process.stderr.write(`the run's temp folders are kept in ${runTmp}\n`);
    else rmSync(runTmp, { recursive: true, force: true });
  };
}
