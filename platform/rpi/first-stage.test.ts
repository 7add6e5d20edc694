import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BUSYBOX, FIRST_STAGE_MODULE_LIST, firstStageInit, NEW_ROOT, ROOT_LABEL } from './first-stage.ts';

describe('the first stage /init', () => {
  const script = firstStageInit({ label: ROOT_LABEL, waitMs: 20_000 });

  it('is a shell script busybox runs, and parses as one', () => {
    expect(script.split('\n')[0]).toBe(`#!${BUSYBOX} sh`);
    const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('loads its modules, finds the root by label, mounts it read-only and switches to it, in that order', () => {
    const steps = [
      'mount -t devtmpfs', `done < ${FIRST_STAGE_MODULE_LIST}`, `findfs LABEL=${ROOT_LABEL}`,
      `mount -t ext4 -o ro,noatime "$dev" ${NEW_ROOT}`, `mount --move /$d ${NEW_ROOT}/$d`, `exec $b switch_root ${NEW_ROOT} /init`,
    ];
    const at = steps.map((s) => script.indexOf(s));
    expect(at.every((n) => n >= 0), JSON.stringify(at)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
  });

  it('gives up after the wait, saying why and what to do, and reboots', () => {
    expect(script).toMatch(/-ge 400 \] && fail "reason=\\"no partition labelled kith-root within 20000 ms: is the card written whole \(kith flash\)\?\\""/);
    expect(script).toContain('reboot -f');
  });
});
