import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { specRegistry } from '../../../platform/config/registry.ts';
import { treeValidator } from '../../../platform/config/validate-tree.ts';
import { createLogger } from '../../../platform/log.ts';
import { configEdits, FIRST_BOOT_DONE, FIRST_BOOT_REQUEST, type FirstBootRequest } from '../../../platform/boot/owner-seed.ts';
import { ensureConfigRepo } from './config-repo.ts';
import { applyEdit, applyFirstBoot, parseRequest } from './first-boot.ts';

const LOCAL = `# Local names under the home zone (RFC 8375).
zone: home.arpa
ttl: 300
hosts:
  kith: [self]
  storage: [self]
`;
const git = (gitdir: string, ...args: string[]) => execFileSync('git', ['--git-dir', gitdir, ...args], { encoding: 'utf8' }).trim();

const made: string[] = [];
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

async function setup(extra: Record<string, string> = {}) {
  const base = mkdtempSync(path.join(tmpdir(), 'kith-storage-firstboot-'));
  made.push(base);
  const work = path.join(base, 'config');
  const data = path.join(base, 'data');
  const gitdir = path.join(base, 'config.git');
  mkdirSync(path.join(work, 'dns'), { recursive: true });
  mkdirSync(path.join(work, 'storage'), { recursive: true });
  mkdirSync(data);
  writeFileSync(path.join(work, 'dns/local.yaml'), LOCAL);
  writeFileSync(path.join(work, 'storage/storage.yaml'), 'createOnPush: false\n');
  for (const [rel, text] of Object.entries(extra)) {
    mkdirSync(path.dirname(path.join(work, rel)), { recursive: true });
    writeFileSync(path.join(work, rel), text);
  }
  await ensureConfigRepo(gitdir, work);
  const lines: string[] = [];
  const log = createLogger({ service: 'storage', level: 'debug', write: (l) => lines.push(l) });
  const validate = treeValidator(await specRegistry(), () => ({ addresses: ['127.0.0.1'] }));
  const request = (r: FirstBootRequest | string) => writeFileSync(path.join(data, FIRST_BOOT_REQUEST), typeof r === 'string' ? r : JSON.stringify(r));
  const apply = () => applyFirstBoot({ gitdir, dataDir: data, validate, log, now: () => Date.UTC(2026, 11, 2) });
  return { gitdir, data, lines, request, apply };
}

describe('storage applies the owner seed at first boot', () => {
  it('commits the home domain and host name to dns/local.yaml as "first boot", keeping comments; once', async () => {
    const t = await setup();
    expect(await t.apply()).toEqual({ state: 'none' });
    t.request({ version: 1, seed: 'abc123', edits: configEdits({ version: 1, hostname: 'box1', domain: 'example.net' }) });
    const r = await t.apply();
    expect(r).toMatchObject({ state: 'committed', files: ['dns/local.yaml'] });
    expect(git(t.gitdir, 'log', '-1', '--format=%an <%ae>|%s')).toBe("first boot <first-boot@kith.local>|First boot: the owner's seed");
    const text = git(t.gitdir, 'show', 'main:dns/local.yaml');
    expect(text).toContain('# Local names under the home zone (RFC 8375).');
    expect(text).toMatch(/^zone: example\.net$/m);
    expect(text).toMatch(/^ {2}box1: \[self\]$/m);
    expect(text).toMatch(/^ {2}kith: \[self\]$/m);
    expect(existsSync(path.join(t.data, FIRST_BOOT_REQUEST))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(t.data, FIRST_BOOT_DONE), 'utf8'))).toMatchObject({ seed: 'abc123', state: 'committed' });
    // Storage restarts: nothing to do. A crash after the commit left the request: no second commit.
    expect(await t.apply()).toEqual({ state: 'none' });
    t.request({ version: 1, seed: 'abc123', edits: configEdits({ version: 1, hostname: 'box1', domain: 'example.net' }) });
    expect(await t.apply()).toEqual({ state: 'unchanged' });
    expect(git(t.gitdir, 'rev-list', '--count', 'main')).toBe('2');
    git(t.gitdir, 'fsck', '--full', '--strict');
  });

  it('a new home domain renames the old one in the other services\' config (mail\'s domain, addresses, host name)', async () => {
    const mailYaml = (await specRegistry()).mail?.defaults['mail/mail.yaml'];
    if (!mailYaml) return; // no mail service in this tree
    expect(mailYaml).toContain('home.arpa');
    const t = await setup({ 'mail/mail.yaml': mailYaml });
    t.request({ version: 1, seed: 'def456', edits: configEdits({ version: 1, hostname: 'box1', domain: 'example.net' }) });
    const r = await t.apply();
    expect(r, t.lines.join('\n')).toMatchObject({ state: 'committed', files: ['dns/local.yaml', 'mail/mail.yaml'] });
    const mail = git(t.gitdir, 'show', 'main:mail/mail.yaml');
    expect(mail).not.toContain('home.arpa');
    expect(mail).toContain('example.net');
    expect(mail).toMatch(/kith\.example\.net/);
  });

  it('refuses what would not validate or cannot apply, marks it done, and keeps the defaults', async () => {
    const t = await setup();
    const head = git(t.gitdir, 'rev-parse', 'main');
    t.request({ version: 1, seed: 's1', edits: [{ file: 'dns/local.yaml', set: [{ path: ['hosts', 'Bad_Name!'], value: ['self'] }] }] });
    expect(await t.apply()).toMatchObject({ state: 'refused', messages: [expect.stringMatching(/dns\/local\.yaml.*not a host name/)] });
    t.request({ version: 1, seed: 's2', edits: [{ file: 'mail/mail.yaml', set: [{ path: ['domain'], value: 'x' }] }] });
    expect(await t.apply()).toMatchObject({ state: 'refused', messages: [expect.stringMatching(/mail\/mail\.yaml is not in config.git/)] });
    for (const hostile of ['', '{', 'null', '[]', '{"version":2}', JSON.stringify({ version: 1, seed: 's', edits: [{ file: '../../etc/passwd.yaml', set: [] }] }), JSON.stringify({ version: 1, seed: 's', edits: [{ file: 'dns/local.yaml', set: [{ path: [], value: 1 }] }] })]) {
      t.request(hostile);
      expect(await t.apply(), hostile).toMatchObject({ state: 'refused' });
      expect(existsSync(path.join(t.data, FIRST_BOOT_REQUEST))).toBe(false);
    }
    expect(git(t.gitdir, 'rev-parse', 'main')).toBe(head);
  });

  it('edits YAML as a document, refusing what is not a mapping', () => {
    expect(applyEdit('# c\na: 1\n', { file: 'x.yaml', set: [{ path: ['b', 'c'], value: 2 }] })).toEqual({ ok: true, text: '# c\na: 1\nb:\n  c: 2\n' });
    expect(applyEdit('- 1\n', { file: 'x.yaml', set: [{ path: ['a'], value: 1 }] }).ok).toBe(false);
    expect(applyEdit('a: [\n', { file: 'x.yaml', set: [{ path: ['a'], value: 1 }] }).ok).toBe(false);
    expect(parseRequest('{"version":1,"seed":"s","edits":[]}').ok).toBe(true);
  });
});
