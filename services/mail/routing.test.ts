import { describe, expect, it } from 'vitest';
import { MailSettingsSchema } from './config.ts';
import { certificateUser, decideRcpt, expand, senderAllowed } from './routing.ts';

const settings = MailSettingsSchema.parse({
  domains: {
    'example.org': { aliases: { postmaster: ['owner@example.net'], team: ['a@example.net', 'b@example.com', 'postmaster@example.org'], loop1: ['loop2@example.org'], loop2: ['loop1@example.org'] } },
    'Other.Example': { aliases: {}, catchAll: ['all@example.net'] },
  },
  users: { me: { addresses: ['me@example.org'], ownerToken: true } },
});

describe('recipient routing', () => {
  it('expands aliases (nested, deduplicated, case and +detail insensitive)', () => {
    expect(expand(settings, 'team@example.org')).toEqual(['a@example.net', 'b@example.com', 'owner@example.net']);
    expect(expand(settings, 'PostMaster+x@EXAMPLE.org')).toEqual(['owner@example.net']);
    expect(decideRcpt(settings, 'anything@other.example', false)).toEqual({ ok: true, targets: ['all@example.net'] });
  });
  it('refuses unknown local parts with 550 5.1.1, and loops too', () => {
    expect(decideRcpt(settings, 'nobody@example.org', false)).toMatchObject({ ok: false, code: 550 });
    expect(decideRcpt(settings, 'loop1@example.org', false)).toMatchObject({ ok: false, code: 550 });
  });
  it('is never an open relay: other domains only for authenticated users', () => {
    expect(decideRcpt(settings, 'victim@example.net', false)).toMatchObject({ ok: false, code: 554, message: expect.stringMatching(/^5\.7\.1 /) });
    expect(decideRcpt(settings, 'friend@example.net', true)).toEqual({ ok: true, targets: ['friend@example.net'] });
    expect(decideRcpt(settings, 'no-domain', true)).toMatchObject({ ok: false, code: 501 });
  });
  it('lets a user send only as their own addresses', () => {
    expect(senderAllowed(settings, 'me', 'Me@example.org')).toBe(true);
    expect(senderAllowed(settings, 'me', 'ceo@example.org')).toBe(false);
    expect(senderAllowed(settings, 'ghost', 'me@example.org')).toBe(false);
  });
  it('maps a paired device\'s certificate to the user listing it, else to the owner\'s user; nothing else maps', () => {
    const s = MailSettingsSchema.parse({ ...settings, users: { me: { addresses: ['me@example.org'], ownerToken: true }, kid: { addresses: ['kid@example.org'], devices: ['tablet'] } } });
    expect(certificateUser(s, { CN: 'owner', OU: 'laptop' })).toBe('me');
    expect(certificateUser(s, { CN: 'owner', OU: 'tablet' })).toBe('kid');
    expect(certificateUser(s, { CN: 'storage', OU: 'laptop' })).toBeUndefined(); // a service's certificate
    expect(certificateUser(s, { CN: 'owner' })).toBeUndefined();
    // An owner user that lists its devices takes only those.
    const only = MailSettingsSchema.parse({ ...settings, users: { me: { addresses: ['me@example.org'], ownerToken: true, devices: ['laptop'] } } });
    expect(certificateUser(only, { CN: 'owner', OU: 'laptop' })).toBe('me');
    expect(certificateUser(only, { CN: 'owner', OU: 'phone' })).toBeUndefined();
  });
});
