import { describe, expect, it } from 'vitest';
import { CalendarSettingsSchema } from '../config.ts';
import { HrefError, pathOfHref, resolve } from './resources.ts';

const cfg = CalendarSettingsSchema.parse({
  users: { kith: { password: 'owner-token' }, alice: { passwordHash: `scrypt$1024$8$1$${'A'.repeat(22)}==$${'B'.repeat(43)}=` } },
  shares: [{ owner: 'kith', collection: 'family', with: 'alice', access: 'read' }],
});

describe('the URL space', () => {
  it('maps homes, collections, items and shares, and nothing else', () => {
    expect(resolve(cfg, 'kith', '/dav/kith/')).toEqual({ kind: 'home', user: 'kith' });
    expect(resolve(cfg, 'kith', '/dav/kith/work/e%401.ics')).toMatchObject({ kind: 'item', owner: 'kith', coll: 'work', item: 'e@1.ics', access: 'owner' });
    expect(resolve(cfg, 'alice', '/dav/kith/')).toBeUndefined();
    expect(resolve(cfg, 'alice', '/dav/kith/work/')).toBeUndefined();
    expect(resolve(cfg, 'alice', '/dav/kith/family/')).toMatchObject({ access: 'read' });
    expect(resolve(cfg, 'alice', '/dav/alice/kith~family/x.ics')).toMatchObject({ owner: 'kith', coll: 'family', access: 'read' });
    expect(resolve(cfg, 'kith', '/dav/alice/kith~family/')).toBeUndefined();
    expect(resolve(cfg, 'kith', '/dav/nobody/x/')).toBeUndefined();
  });
  it('refuses traversal and odd names', () => {
    for (const p of ['/dav/kith/work/..', '/dav/kith/work/%2E%2E', '/dav/kith/work/a%2Fb', '/dav/kith/work/.git', '/dav/kith/work/a%00', '/dav/kith//x', '/dav/kith/work/%E0%A4%A']) {
      expect(() => resolve(cfg, 'kith', p), p).toThrow(HrefError);
    }
    expect(resolve(cfg, 'kith', '/dav/kith/work/a/b/c')).toBeUndefined();
    expect(pathOfHref('https://h:1/dav/kith/x.ics?y')).toBe('/dav/kith/x.ics');
    expect(() => pathOfHref('x.ics')).toThrow(HrefError);
  });
});
