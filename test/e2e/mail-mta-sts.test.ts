/**
 * MTA-STS (RFC 8461) end to end on loopback: the kith DNS service (sealed bundle) serves
 * the recipient domains' MX, `_mta-sts` TXT and `mta-sts.` A records; a local HTTPS server
 * with a certificate from a test CA serves the policies; aiosmtpd (python3-aiosmtpd) with
 * STARTTLS is every MX. The queue's delivery step (deliver()) sends to:
 *   enforce.test   enforce, MX matches, certificate valid for the MX's name  → delivered over TLS
 *   badmx.test     enforce, the MX is not in the policy                     → 4.7.5, kept queued
 *   badcert.test   enforce, the MX's certificate is not for its name        → temporary failure
 *   testing.test   testing, the MX is not in the policy                     → delivered, reported
 *   plain.test     no policy                                                → delivered
 * and the policy is fetched once per max_age, kept across a restart (the cache file).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dns from '../../services/dns/main.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles } from '../../platform/services.ts';
import { loadOrCreateCa, provisionServerTls } from '../../platform/pki/provision.ts';
import { deliver, type Route } from '../../services/mail/queue/deliver.ts';
import { MtaSts } from '../../services/mail/queue/mta-sts.ts';
import { startSink, type Sink } from '../../services/mail/test/harness.ts';
import { freeTcpPort } from '../support/ports.ts';
import { startBundle, tempDir, type ServiceProcess } from '../platform/helpers.ts';

const DNS_BUNDLE = path.resolve(import.meta.dirname, '../../dist/dns.mjs');

const zone = (d: string, o: { id?: string; mx?: string } = {}) => [
  `$ORIGIN ${d}.`, '$TTL 60',
  `@ IN SOA ns1 hostmaster 2026120201 7200 3600 1209600 60`,
  '@ IN NS ns1', 'ns1 IN A 127.0.0.1',
  `@ IN MX 10 ${o.mx ?? 'mx'}`, 'mx IN A 127.0.0.1',
  ...(o.id ? [`_mta-sts IN TXT "v=STSv1; id=${o.id};"`, 'mta-sts IN A 127.0.0.1'] : []),
  '',
].join('\n');

const policies: Record<string, string> = {
  'enforce.test': 'version: STSv1\nmode: enforce\nmx: mx.enforce.test\nmax_age: 600\n',
  'badmx.test': 'version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 600\n',
  'badcert.test': 'version: STSv1\nmode: enforce\nmx: mx.badcert.test\nmax_age: 600\n',
  'testing.test': 'version: STSv1\nmode: testing\nmx: mx.elsewhere.test\nmax_age: 600\n',
};

describe('MTA-STS with the kith DNS service, an HTTPS policy host and aiosmtpd as the MX', () => {
  let dnsSvc: ServiceProcess;
  let dnsPort: number;
  let sink: Sink;
  let web: https.Server;
  let webPort: number;
  let ca: string;
  const fetches: string[] = [];

  beforeAll(async () => {
    const root = tempDir('kith-mta-sts-');
    const caPem = await loadOrCreateCa(path.join(root, 'pki'), 'MTA-STS test CA');
    ca = caPem.cert;
    // One certificate for the policy hosts and the MX hosts, except mx.badcert.test.
    const names = [...Object.keys(policies).map((d) => `mta-sts.${d}`), 'mx.enforce.test', 'mx.badmx.test', 'mx.testing.test', 'mx.plain.test'];
    await provisionServerTls(caPem, path.join(root, 'certs'), 'mta-sts test', names);
    const cert = path.join(root, 'certs', 'tls', 'server.crt');
    const key = path.join(root, 'certs', 'tls', 'server.key');

    const config = path.join(root, 'config');
    seedMissingFiles(config, defaultConfigFiles([dns as never]));
    mkdirSync(path.join(config, 'dns/zones'), { recursive: true });
    for (const d of Object.keys(policies)) writeFileSync(path.join(config, `dns/zones/${d}.zone`), zone(d, { id: 'v1' }));
    writeFileSync(path.join(config, 'dns/zones/plain.test.zone'), zone('plain.test'));
    dnsPort = await freeTcpPort();
    dnsSvc = await startBundle(DNS_BUNDLE, ['--config', config, '--data', path.join(root, 'dns-data'), '--listen', `dns=127.0.0.1:${dnsPort}`, '--listen', 'health=127.0.0.1:0'], 30_000);

    web = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      const domain = String(req.headers.host ?? '').replace(/:\d+$/, '').replace(/^mta-sts\./, '');
      fetches.push(domain);
      const p = policies[domain];
      if (req.url !== '/.well-known/mta-sts.txt' || !p) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(p);
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webPort = (web.address() as { port: number }).port;
    sink = await startSink({ tls: { cert, key } });
  }, 60_000);

  afterAll(async () => {
    await sink?.stop();
    web?.close();
    await dnsSvc?.stop();
  });

  const reports: { msg: string; fields: Record<string, unknown> }[] = [];
  const cacheFile = path.join(tempDir('kith-sts-cache-'), 'mta-sts.json');
  const clock = { t: Date.now() };
  let sts: MtaSts;
  const route = (): Route => ({
    tls: 'opportunistic', verifyCertificates: false, resolver: { host: '127.0.0.1', port: dnsPort }, mxPort: sink.port, helo: 'relay.test', mtaSts: sts, ca,
  });
  const send = async (to: string) => {
    const body = `From: a@example.org\r\nTo: ${to}\r\nSubject: sts\r\n\r\nhello\r\n`;
    const r = await deliver({ from: 'a@example.org', to: [to], body: () => Readable.from([Buffer.from(body)]), size: body.length }, route());
    return r.get(to)!;
  };

  it('enforce: delivered over TLS to the matching MX; a policy within max_age is not fetched again', async () => {
    sts = new MtaSts({ resolver: () => ({ host: '127.0.0.1', port: dnsPort }), now: () => clock.t, ca, httpsPort: webPort, file: cacheFile, report: (msg, fields) => reports.push({ msg, fields }) });
    expect(await sts.policyFor('enforce.test')).toMatchObject({ mode: 'enforce', mx: ['mx.enforce.test'], id: 'v1', maxAge: 600 });
    const r = await send('someone@enforce.test');
    expect(r.outcome.kind, r.outcome.response).toBe('ok');
    expect(r.mta).toBe('mx.enforce.test');
    const got = await sink.waitFor(1);
    expect(got.at(-1)).toMatchObject({ to: ['someone@enforce.test'], tls: true });
    expect(fetches.filter((d) => d === 'enforce.test')).toHaveLength(1);
    // After a restart the policy comes from the data folder: not fetched again while in date.
    await sts.flushed();
    const restarted = new MtaSts({ resolver: () => ({ host: '127.0.0.1', port: dnsPort }), now: () => clock.t, ca, httpsPort: webPort, file: cacheFile });
    expect(await restarted.policyFor('enforce.test')).toMatchObject({ mode: 'enforce', id: 'v1' });
    expect(fetches.filter((d) => d === 'enforce.test')).toHaveLength(1);
    clock.t += 601_000; // past max_age: fetched again
    await sts.policyFor('enforce.test');
    expect(fetches.filter((d) => d === 'enforce.test')).toHaveLength(2);
  });

  it('enforce: an MX outside the policy is never used (4.7.5, retried later)', async () => {
    const before = sink.messages().length;
    const r = await send('someone@badmx.test');
    expect(r.outcome).toMatchObject({ kind: 'temp', enhanced: '4.7.5' });
    expect(r.outcome.response).toMatch(/no MX host of badmx\.test \(mx\.badmx\.test\) matches its MTA-STS policy \(mx: \*\.elsewhere\.test\)/);
    expect(sink.messages()).toHaveLength(before);
  });

  it('enforce: a certificate not valid for the MX\'s name stops the delivery (temporary)', async () => {
    const before = sink.messages().length;
    const r = await send('someone@badcert.test');
    expect(r.outcome.kind).toBe('temp');
    expect(r.outcome.response).toMatch(/^MTA-STS enforce: .*(altnames|Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID)/i);
    expect(sink.messages()).toHaveLength(before);
  });

  it('testing: delivered as usual, and what enforce would have refused is reported', async () => {
    const before = sink.messages().length;
    const r = await send('someone@testing.test');
    expect(r.outcome.kind, r.outcome.response).toBe('ok');
    expect(await sink.waitFor(before + 1)).toHaveLength(before + 1);
    expect(reports.some((x) => /MTA-STS \(testing\): MX hosts not in the policy/.test(x.msg) && x.fields.domain === 'testing.test')).toBe(true);
  });

  it('no policy: delivered as before; a policy that cannot be fetched is no policy', async () => {
    const before = sink.messages().length;
    expect((await send('someone@plain.test')).outcome.kind).toBe('ok');
    expect(await sink.waitFor(before + 1)).toHaveLength(before + 1);
    // The policy host answers 404 for an unknown domain: a fetch failure, reported, no policy.
    policies['enforce.test'] = '';
    const fresh = new MtaSts({ resolver: () => ({ host: '127.0.0.1', port: dnsPort }), now: () => clock.t, ca, httpsPort: webPort, report: (msg, fields) => reports.push({ msg, fields }) });
    expect(await fresh.policyFor('enforce.test')).toBeUndefined();
    expect(reports.some((x) => x.msg === 'MTA-STS policy fetch failed' && /HTTP 404/.test(String(x.fields.error)))).toBe(true);
    // The earlier cache still holds its policy while max_age lasts (§5.1).
    expect(await sts.policyFor('enforce.test')).toMatchObject({ mode: 'enforce' });
  });
});
