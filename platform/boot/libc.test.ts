import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as libc from './libc.ts';
import * as st from './structs.ts';

// Only calls that change nothing on the host: they check the node:ffi signatures and errno.
describe('libc through node:ffi', () => {
  it('reports errno and its message', () => {
    expect(libc.strerror(libc.ENOENT)).toBe('No such file or directory');
    expect(libc.mount('none', '/nonexistent/kith-test', 'tmpfs')).toBe(libc.ENOENT);
  });
  it('binds clock_settime: refused (EPERM) in a user namespace, so the host clock is never touched', () => {
    // Root of a user namespace has no CAP_SYS_TIME over the real clock: the call reaches the
    // kernel with a well-formed timespec and is refused there.
    const lib = join(import.meta.dirname, 'libc.ts');
    const r = spawnSync('unshare', ['-r', process.execPath, '--input-type=module', '-e', `import * as l from ${JSON.stringify(lib)}; process.stdout.write(String(l.setClock(Date.now())))`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout, r.stderr).toBe('1'); // EPERM
  });
  it('reads interface flags with ioctl on an AF_INET socket', () => {
    const s = libc.socket(libc.AF_INET, libc.SOCK_DGRAM, 0);
    expect(s.fd).toBeGreaterThanOrEqual(0);
    try {
      const req = st.ifreqFlags('lo');
      expect(libc.ioctl(s.fd, st.SIOCGIFFLAGS, req)).toBe(0);
      expect(libc.ioctl(s.fd, st.SIOCGIFFLAGS, st.ifreqFlags('nosuchif0'))).toBe(19); // ENODEV
    } finally {
      expect(libc.close(s.fd)).toBe(0);
    }
  });
});
