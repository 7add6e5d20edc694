import { describe, expect, it } from 'vitest';
import { memoryConfigSource } from '../../platform/config/fs-source.ts';
import { formatIssue } from '../../platform/config/spec.ts';
import mailConfig, { DEFAULT_MAIL_YAML, loadMailConfig } from './config.ts';
import { hashPassword } from '../../platform/passwords.ts';

describe('mail config', () => {
  it('loads the built-in defaults: the home zone, the owner user with the kith up token', async () => {
    const r = await mailConfig.load(memoryConfigSource(mailConfig.defaults));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const s = r.value.settings;
    expect(Object.keys(s.domains)).toEqual(['home.arpa']);
    expect(s.users.kith).toEqual({ addresses: ['kith@home.arpa'], passwords: [], ownerToken: true });
    expect(s.outbound.resolver).toBe('kith');
    expect(s.queue.expireSeconds).toBe(5 * 86_400);
    expect(s.dkim.selectors.map((x) => x.algorithm)).toEqual(['ed25519', 'rsa']);
    expect(r.value.lines.domains['home.arpa']).toBe(DEFAULT_MAIL_YAML.split('\n').findIndex((l) => l.trim() === 'home.arpa:') + 1);
  });

  it('takes an empty folder (no mail.yaml) as defaults with no domains', async () => {
    const r = await loadMailConfig(memoryConfigSource({}));
    expect(r.ok && Object.keys(r.value.settings.domains)).toEqual([]);
  });

  it('names file, line and field for every problem', async () => {
    const r = await loadMailConfig(memoryConfigSource({
      'mail/mail.yaml': [
        'domains:',
        '  example.org:',
        '    aliases:',
        '      bob: [not-an-address]',
        'users:',
        '  me:',
        '    addresses: [me@elsewhere.net]',
        '    passwords: [hunter2]',
        'limits: { recipients: 0 }',
        'outbound: { tls: sometimes }',
      ].join('\n'),
    }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const msgs = r.issues.map(formatIssue);
    expect(msgs).toContainEqual(expect.stringMatching(/^mail\/mail\.yaml:4: domains\.example\.org\.aliases\.bob\.0: expected an address/));
    expect(msgs).toContainEqual(expect.stringMatching(/^mail\/mail\.yaml:8: users\.me\.passwords\.0: expected a password hash/));
    expect(msgs).toContainEqual(expect.stringMatching(/^mail\/mail\.yaml:9: limits\.recipients: /));
    expect(msgs).toContainEqual(expect.stringMatching(/^mail\/mail\.yaml:10: outbound\.tls: /));
  });

  it('refuses a user who may send as someone else\'s domain, or cannot log in', async () => {
    const r = await loadMailConfig(memoryConfigSource({ 'mail/mail.yaml': 'domains:\n  example.org: {}\nusers:\n  me:\n    addresses: [me@elsewhere.net]\n    passwords: ["' + hashPassword('x') + '"]\n  nobody:\n    addresses: [n@example.org]\n' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^mail\/mail\.yaml:4: users\.me\.addresses\.0: me@elsewhere\.net is not in one of your domains/),
      expect.stringMatching(/^mail\/mail\.yaml:7: users\.nobody: no way to log in/),
    ]);
  });
});
