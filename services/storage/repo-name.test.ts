/** One repository-name rule for git URLs, the store API, `kith repo create` and storage.yaml (issue 11, item 9). */
import { describe, expect, it } from 'vitest';
import { isValidRepoName } from './repo-name.ts';
import { StorageConfigSchema } from './config/schema.ts';

const allowNff = (names: string[]) => StorageConfigSchema.safeParse({ allowNonFastForward: names }).success;

describe('repository names', () => {
  it('are the same for allowNonFastForward as for kith repo create', () => {
    for (const name of ['notes', 'Notes.2026', '_private', 'a'.repeat(64), 'x-y_z.1']) {
      expect(isValidRepoName(name), name).toBe(true);
      expect(allowNff([name]), name).toBe(true);
    }
    for (const name of ['', '.hidden', '-x', 'a'.repeat(65), 'a..b', 'x.git', 'x.lock', 'a/b', 'a b', 'é']) {
      expect(isValidRepoName(name), name).toBe(false);
      expect(allowNff([name]), name).toBe(false);
    }
  });
});
