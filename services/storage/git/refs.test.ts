import { describe, expect, it } from 'vitest';
import { isValidRefName } from './refs.ts';
import { isValidRepoName } from './repos.ts';

describe('names', () => {
  it('accepts ordinary ref names', () => {
    for (const n of ['refs/heads/main', 'refs/tags/v1.0', 'refs/heads/feature/x-y_z']) expect(isValidRefName(n), n).toBe(true);
  });
  it('refuses ref names that git refuses or that escape the repository', () => {
    for (const n of [
      'HEAD', 'refs/heads', 'refs/heads/../../config', 'refs/heads/a..b', 'refs/heads/.hidden', 'refs/heads/x.lock',
      'refs/heads/a b', 'refs/heads/a~1', 'refs/heads/a^', 'refs/heads/a:b', 'refs/heads/a\\b', 'refs/heads/x/',
      'refs/heads//x', 'refs/heads/@{u}', 'refs/heads/x.', 'refs/heads/\u0001', 'refs/heads/*',
    ]) expect(isValidRefName(n), n).toBe(false);
  });
  it('accepts only single-segment repository names', () => {
    for (const n of ['config', 'my-repo', 'a.b_c']) expect(isValidRepoName(n), n).toBe(true);
    for (const n of ['', '.', '..', '.git', 'a/b', '../x', 'x.git', 'a..b', '-rf', 'x'.repeat(101), 'a b']) {
      expect(isValidRepoName(n), n).toBe(false);
    }
  });
});
