import { describe, expect, it } from 'vitest';
import { parseLanguages, planNodeBinary } from './plan.ts';

describe('--languages', () => {
  it('reads language codes, lower-cased and without repeats', () => {
    expect(parseLanguages('en')).toEqual(['en']);
    expect(parseLanguages(' EN, de ,en,fil')).toEqual(['en', 'de', 'fil']);
    expect(parseLanguages('all')).toEqual(['all']);
  });
  it('refuses what is not a language code, saying so', () => {
    for (const bad of ['', ',', 'english', 'e1', 'en-GB', 'en_US', '../x', 'de;rm']) {
      const r = parseLanguages(bad);
      expect('error' in r, bad).toBe(true);
    }
    expect(parseLanguages('en,xx-YY')).toEqual({ error: '"xx-yy" is not a language code (two or three letters, as in en, de, fil), nor all' });
  });
  it('plans a trim before the strip, or none for all', () => {
    expect(planNodeBinary({ nodeDir: '/c/node', stripTool: 'strip', to: '/r/bin/node', languages: ['en', 'de'] }).map((a) => a.kind)).toEqual(['trim-icu', 'strip', 'cut-icu-tail']);
    expect(planNodeBinary({ nodeDir: '/c/node', stripTool: 'strip', to: '/r/bin/node', languages: ['all'] })).toEqual([{ kind: 'strip', tool: 'strip', from: '/c/node/tree/package/bin/node', to: '/r/bin/node' }]);
  });
});
