/**
 * Golden files for every command's --help: the help is the user's first documentation, so a
 * change to it is a visible diff. Regenerate with UPDATE_GOLDEN=1 ./kith test -- test/cli.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const golden = path.join(import.meta.dirname, 'golden');
const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'installer/kith.ts'), ...args], { encoding: 'utf8' });

const cases: [string, string[]][] = [
  ['kith', ['--help']],
  ['up', ['up', '--help']],
  ['build', ['build', '--help']],
  ['test', ['test', '--help']],
  ['config', ['config', '--help']],
  ['repo', ['repo', '--help']],
  ['image', ['image', '--help']],
  ['vm', ['vm', '--help']],
  ['status', ['status', '--help']],
  ['flash', ['flash', '--help']],
  ['pair', ['pair', '--help']],
  ['devices', ['devices', '--help']],
  ['revoke', ['revoke', '--help']],
  ['mail', ['mail', '--help']],
  ['calendar', ['calendar', '--help']],
];

describe('--help', () => {
  for (const [name, args] of cases) {
    it(`kith ${args.join(' ')}`, () => {
      const r = kith(...args);
      expect(r.status).toBe(0);
      const file = path.join(golden, `${name}.txt`);
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, r.stdout);
      expect(r.stdout).toBe(readFileSync(file, 'utf8'));
    });
  }
  it('an unknown option is a usage error (64) naming the command', () => {
    for (const cmd of ['up', 'build', 'status', 'repo', 'config', 'image', 'vm', 'flash']) {
      const r = kith(...(cmd === 'config' ? ['config', 'log'] : [cmd]), '--no-such-option');
      expect(r.status, cmd).toBe(64);
      expect(r.stderr).toMatch(new RegExp(`^kith ${cmd}: Unknown option '--no-such-option'`));
    }
  });

  it('an unknown command is a usage error (64) that shows the commands', () => {
    const r = kith('frobnicate');
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).toMatch(/Commands:/);
  });
});
