/**
 * Entry of dist/kith-up.cjs, `kith up`'s supervisor (installer/up/supervise.ts): started by
 * installer/commands/up.ts through process.execve, with the handoff file as its argument.
 */
import { takeHandoff } from './handoff.ts';
import { supervise } from './supervise.ts';

const file = process.argv[2];
if (!file) {
  process.stderr.write('kith-up.cjs is started by `kith up` (installer/commands/up.ts), with its handoff file\n');
  process.exitCode = 64;
} else {
  supervise(takeHandoff(file)).then(
    (code) => { process.exitCode = code; },
    (err: Error) => {
      process.stderr.write(`kith: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
