import { describe, expect, it } from 'vitest';
import { validatePath, validatePrefix } from './paths.ts';
import { PathError } from './errors.ts';

describe('paths', () => {
  it('accepts ordinary paths', () => {
    expect(validatePath('calendars/home/2026-01-01.ics')).toEqual(['calendars', 'home', '2026-01-01.ics']);
    expect(validatePath('a..b/.hidden/…/x y')).toEqual(['a..b', '.hidden', '…', 'x y']);
    expect(validatePrefix('')).toEqual([]);
    expect(validatePrefix('a/b/')).toEqual(['a', 'b']);
  });

  it.each([
    ['', /empty/],
    ['/etc/passwd', /relative/],
    ['a/../../etc', /leave the folder/],
    ['./a', /leave the folder/],
    ['a//b', /empty segment/],
    ['a/', /must not end/],
    ['.git/HEAD', /\.git/],
    ['x/.Git/config', /\.git/],
    ['.git ./x', /\.git/],
    ['.git...', /\.git/],
    ['git~1/config', /\.git/],
    ['.\u200cgit/config', /\.git/],
    ['.gitmodules', /gitmodules/],
    ['GITMOD~1', /gitmodules/],
    ['a\\b', /backslash/],
    ['a\u0000b', /control/],
    ['a\rb', /control/],
    ['\udc00', /Unicode/],
    ['x'.repeat(256), /maxSegmentBytes = 255/],
    ['é'.repeat(128), /maxSegmentBytes/],
    ['a/'.repeat(32) + 'b', /maxDepth = 32/],
    [('x'.repeat(200) + '/').repeat(6) + 'y', /maxPathBytes = 1024/],
  ])('refuses %j', (p, why) => {
    expect(() => validatePath(p)).toThrow(PathError);
    expect(() => validatePath(p)).toThrow(why);
  });

  it('refuses non-strings and takes custom limits', () => {
    expect(() => validatePath(undefined)).toThrow(/must be a string/);
    expect(() => validatePath('abcdef', { maxPathBytes: 5, maxSegmentBytes: 255, maxDepth: 32 })).toThrow(/maxPathBytes = 5/);
  });
});
