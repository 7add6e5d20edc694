import { fdatasyncSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropCachedPages } from './page-cache.ts';

describe('dropCachedPages', () => {
  it('drops a flushed file\'s pages (posix_fadvise answers 0), and EBADF for a closed descriptor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-fadvise-'));
    const f = join(dir, 'x');
    writeFileSync(f, Buffer.alloc(1 << 20, 7));
    const fd = openSync(f, 'r+');
    fdatasyncSync(fd);
    expect(dropCachedPages(fd)).toBe(0);
    closeSync(fd);
    expect(dropCachedPages(fd)).toBe(9); // EBADF: the call really reached libc
    rmSync(dir, { recursive: true });
  });
});
