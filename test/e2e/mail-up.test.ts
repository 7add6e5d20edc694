/**
 * Mail under `kith up`, with DNS and storage: the service publishes its MX, SPF, DKIM and
 * DMARC records as commits authored by it (dig shows them, `kith config log` names them),
 * the owner's token is the submission password, a config pushed through storage applies
 * live, inbound mail gets Authentication-Results from lookups against the kith DNS
 * service, a DMARC p=reject failure is refused at DATA, and python3-dkim verifies the
 * signature against the key record the DNS service serves.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAIL_YAML } from '../../services/mail/config.ts';
import { dkimVerify, replies, startSink, swaks, type Sink } from '../../services/mail/test/harness.ts';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';

describe('mail under kith up', () => {
  let up: KithUp;
  let sink: Sink;
  let dnsPort: number;
  let token: string;
  let smtp: string[];
  let store: string;

  const dig = (name: string, type: string) => spawnSync('dig', ['@127.0.0.1', '-p', String(dnsPort), '+short', '+tries=1', '+time=2', name, type], { encoding: 'utf8' }).stdout.trim();
  const txt = (s: string) => s.split('\n').map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join(''));
  const until = async (what: string, f: () => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!f()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const put = (file: string, body: string) => spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', `authorization: Bearer ${token}`, '--data-binary', body, `${store}/${file}`], { encoding: 'utf8' }).stdout;
  const mailLog = () => readFileSync(path.join(up.data, 'logs', 'mail.log'), 'utf8');

  beforeAll(async () => {
    up = await kithUp();
    sink = await startSink();
    dnsPort = Number(/:(\d+)$/.exec(up.services.get('dns')!.endpoints.dns!)![1]);
    token = up.services.get('storage')!.token!;
    store = up.services.get('storage')!.endpoints.store!.replace(/\/store\/$/, '/store/config');
    smtp = ['--server', up.services.get('mail')!.endpoints.smtp!.replace('smtp://', '')];
  });
  afterAll(async () => {
    await up?.stop();
    await sink?.stop();
  });

  it('kith up --json gives smtp and submission endpoints', () => {
    expect(up.services.get('mail')!.endpoints).toMatchObject({ smtp: expect.stringMatching(/^smtp:\/\/127\.0\.0\.1:\d+$/), submission: expect.stringMatching(/^smtp:\/\//), submissions: expect.stringMatching(/^smtps:\/\//) });
  });

  it('publishes MX, SPF, DKIM and DMARC into the home zone as its own commit', async () => {
    await until('the MX record', () => dig('home.arpa', 'MX') !== '');
    expect(dig('home.arpa', 'MX')).toBe('10 kith.home.arpa.');
    expect(dig('kith.home.arpa', 'A')).toBe('127.0.0.1');
    expect(txt(dig('home.arpa', 'TXT'))).toContain('v=spf1 mx -all');
    expect(txt(dig('_dmarc.home.arpa', 'TXT'))).toEqual(['v=DMARC1; p=none']);
    expect(txt(dig('kith-ed._domainkey.home.arpa', 'TXT'))[0]).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    expect(txt(dig('kith-rsa._domainkey.home.arpa', 'TXT'))[0]).toMatch(/^v=DKIM1; k=rsa; p=MIIBIjAN/);
    const log = spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'config', 'log', '--data', up.data, '--json'], { encoding: 'utf8' });
    const changes = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as { author: string; message: string; files: { path: string }[] });
    const mine = changes.find((c) => c.author === 'mail');
    expect(mine?.message).toMatch(/^Publish mail records for home\.arpa/);
    expect(mine?.files.map((f) => f.path)).toEqual(['dns/zones/home.arpa.zone']);
  });

  it('takes a config pushed through storage live, verifies inbound mail against the kith DNS service, and refuses a DMARC p=reject failure', async () => {
    const zone = '$ORIGIN strict.example.\n$TTL 300\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n@ IN NS ns\nns IN A 192.0.2.53\n@ IN TXT "v=spf1 -all"\n_dmarc IN TXT "v=DMARC1; p=reject"\n';
    expect(put('dns/zones/strict.example.zone', zone)).toMatch(/^20[01]$/); // 201 when the file is new
    const yaml = readFileSync(path.join(up.data, 'config', 'mail', 'mail.yaml'), 'utf8')
      .replace(/^outbound:\n/m, `outbound:\n  smarthost: { host: 127.0.0.1, port: ${sink.port} }\n`);
    const applied = mailLog().split('\n').filter((l) => l.includes('"config applied"')).length;
    expect(put('mail/mail.yaml', yaml)).toMatch(/^20[01]$/); // 201 when the file is new
    await until('mail to apply the pushed config', () => mailLog().split('\n').filter((l) => l.includes('"config applied"')).length > applied);
    await until('the strict.example zone', () => dig('_dmarc.strict.example', 'TXT') !== '');

    const refused = replies(swaks([...smtp, '--from', 'ceo@strict.example', '--to', 'kith@home.arpa', '--header', 'From: ceo@strict.example']).out).join('\n');
    expect(refused).toMatch(/^550 5\.7\.1 Message refused: DMARC policy of strict\.example is reject/m);

    const before = sink.messages().length;
    const ok = swaks([...smtp, '--from', 'friend@example.net', '--to', 'kith@home.arpa', '--header', 'From: friend@example.net', '--header', 'Subject: to the alias']);
    expect(ok.out).toMatch(/queued as/);
    const got = (await sink.waitFor(before + 1)).at(-1)!;
    expect(got.to).toEqual(['owner@example.net']);
    expect(got.raw).toMatch(/\r\nAuthentication-Results: kith\.home\.arpa;\r\n dkim=none/);
    expect(got.raw).toMatch(/\r\nReceived-SPF: /);
    const records: Record<string, string> = {};
    for (const sel of ['kith-ed', 'kith-rsa']) records[`${sel}._domainkey.home.arpa`] = txt(dig(`${sel}._domainkey.home.arpa`, 'TXT'))[0]!;
    const v = dkimVerify(got.file, records);
    expect(v).toEqual([
      { selector: 'kith-ed', algorithm: 'ed25519-sha256', domain: 'home.arpa', ok: true },
      { selector: 'kith-rsa', algorithm: 'rsa-sha256', domain: 'home.arpa', ok: true },
    ]);
  });

  it("takes the token kith up prints as the owner's submission password", async () => {
    const sub = up.services.get('mail')!.endpoints.submission!.replace('smtp://', '');
    const before = sink.messages().length;
    const r = swaks(['--server', sub, '--tls', '--tls-verify', '--tls-ca-path', path.join(up.data, 'pki', 'ca.crt'), '-au', 'kith', '-ap', token, '--from', 'kith@home.arpa', '--to', 'someone@example.org', '--header', 'From: kith@home.arpa']);
    expect(r.out).toMatch(/queued as/);
    const got = (await sink.waitFor(before + 1)).at(-1)!;
    expect(got.to).toEqual(['someone@example.org']);
    expect(replies(swaks(['--server', sub, '--tls', '-au', 'kith', '-ap', 'not-the-token', '--from', 'kith@home.arpa', '--to', 'x@example.org']).out)).toContain('535 5.7.8 Authentication credentials invalid');
  });
  it('delivers straight to the MX the kith DNS service names (no smarthost)', async () => {
    const zone = '$ORIGIN remote.example.\n$TTL 300\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n@ IN NS ns\nns IN A 192.0.2.53\n@ IN MX 10 mx.remote.example.\nmx IN A 127.0.0.1\n';
    expect(put('dns/zones/remote.example.zone', zone)).toMatch(/^20[01]$/); // 201 when the file is new
    const applied = mailLog().split('\n').filter((l) => l.includes('"config applied"')).length;
    expect(put('mail/mail.yaml', DEFAULT_MAIL_YAML.replace(/^outbound:\n/m, `outbound:\n  mxPort: ${sink.port}\n`))).toMatch(/^20[01]$/); // 201 when the file is new
    await until('mail to apply the pushed config', () => mailLog().split('\n').filter((l) => l.includes('"config applied"')).length > applied);
    await until('the remote.example MX', () => dig('remote.example', 'MX') !== '');
    const before = sink.messages().length;
    const sub = up.services.get('mail')!.endpoints.submission!.replace('smtp://', '');
    expect(swaks(['--server', sub, '--tls', '-au', 'kith', '-ap', token, '--from', 'kith@home.arpa', '--to', 'friend@remote.example', '--header', 'From: kith@home.arpa']).out).toMatch(/queued as/);
    const got = (await sink.waitFor(before + 1)).at(-1)!;
    expect(got.to).toEqual(['friend@remote.example']);
    await until('the delivery log line', () => /"msg":"delivered".*"to":"friend@remote\.example","mta":"mx\.remote\.example"/.test(mailLog()));
  });
});
