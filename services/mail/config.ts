/**
 * The mail service's configuration, read from the config tree:
 *
 *   mail/mail.yaml   domains and their aliases, users who may submit, the outbound route
 *                    (smarthost or direct MX), limits, queue timing, DKIM selectors, the
 *                    records to publish into the owner's zone
 *
 * Everything validates before anything is served; every problem names file, line and
 * field. Imports nothing from other services: storage validates pushes with this spec, and
 * the cross-service rules (crosscheck.ts) see DNS only through platform/config/views.ts.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { loadYamlFile } from '../../platform/config/yaml.ts';
import type { ConfigIssue, ConfigResult, ConfigSource, ConfigSpec, MachineFacts } from '../../platform/config/spec.ts';
import { mailCrossCheck } from './crosscheck.ts';
import { isPasswordHash } from '../../platform/passwords.ts';
import { MAIL_YAML, MailSettingsSchema, type MailConfig, type MailSettings } from './schema.ts';

export { MAIL_YAML, MailSettingsSchema, type MailConfig, type MailSettings };

/** The line of `key:` under a top-level section of the YAML text, for messages. */
function findLine(text: string, key: string, after = 0): number | undefined {
  const lines = text.split('\n');
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^\\s*(?:-\\s*)?(?:name:\\s*)?["']?${k}["']?\\s*(?::|$)`, 'i');
  const flow = new RegExp(`name:\\s*["']?${k}["']?\\s*[,}]`, 'i');
  for (let i = after; i < lines.length; i++) if (re.test(lines[i]!) || flow.test(lines[i]!)) return i + 1;
  return undefined;
}

export async function loadMailConfig(source: ConfigSource, facts?: MachineFacts): Promise<ConfigResult<MailConfig>> {
  const r = await loadYamlFile(source, MAIL_YAML, MailSettingsSchema);
  if (!r.ok) return r;
  const s = r.value;
  const issues: ConfigIssue[] = [];
  const text = (await source.read(MAIL_YAML)) ?? '';
  const dom = (a: string) => a.slice(a.lastIndexOf('@') + 1).toLowerCase();
  for (const [user, u] of Object.entries(s.users)) {
    u.addresses.forEach((a, i) => {
      if (!s.domains[dom(a)]) issues.push({ file: MAIL_YAML, line: findLine(text, user), field: `users.${user}.addresses.${i}`, message: `${a} is not in one of your domains (domains: ${Object.keys(s.domains).join(', ') || 'none'}): add ${dom(a)} under domains, or send as an address you own` });
    });
    if (u.passwords.length === 0 && !u.ownerToken && !u.devices?.length) issues.push({ file: MAIL_YAML, line: findLine(text, user), field: `users.${user}`, message: 'no way to log in: add a hash to passwords (`kith mail hash-password`), list paired devices under devices, or set ownerToken: true' });
  }
  const names = new Set<string>();
  s.dkim.selectors.forEach((sel, i) => {
    if (names.has(sel.name.toLowerCase())) issues.push({ file: MAIL_YAML, line: findLine(text, sel.name), field: `dkim.selectors.${i}.name`, message: `selector ${sel.name} is listed twice` });
    names.add(sel.name.toLowerCase());
  });
  const sh = s.outbound.smarthost;
  if (sh && (sh.username === undefined) !== (sh.password === undefined)) issues.push({ file: MAIL_YAML, line: findLine(text, 'smarthost'), field: 'outbound.smarthost', message: 'give both username and password, or neither' });
  if (issues.length > 0) return { ok: false, issues };
  const lines: MailConfig['lines'] = { domains: {}, selectors: {} };
  const domainsAt = findLine(text, 'domains') ?? 0;
  for (const d of Object.keys(s.domains)) {
    const l = findLine(text, d, domainsAt);
    if (l !== undefined) lines.domains[d] = l;
  }
  for (const sel of s.dkim.selectors) {
    const l = findLine(text, sel.name);
    if (l !== undefined) lines.selectors[sel.name] = l;
  }
  const hl = findLine(text, 'hostname');
  if (hl !== undefined) lines.hostname = hl;
  return { ok: true, value: { settings: s, lines, ...(facts ? { addresses: facts.addresses } : {}) } };
}

export const DEFAULT_MAIL_YAML = `# kith mail: accepts mail for your domains on port 25 and forwards it per alias,
# takes mail from your devices on 587 (STARTTLS) and 465 (TLS), signs it with DKIM and
# delivers it through a smarthost or straight to each recipient's MX. Nothing
# acknowledged is lost: every message is on disk before the 250.

# The name this server greets with; published as the MX of each domain below.
hostname: kith.home.arpa

# Your domains. Each alias forwards to one or more mailboxes elsewhere; catchAll takes
# any other address of the domain (leave it out to refuse unknown addresses).
domains:
  home.arpa:
    aliases:
      postmaster: [kith@home.arpa]
      kith: [owner@example.net]
    # catchAll: [owner@example.net]

# Who may send through ports 587/465, as which addresses. Passwords are stored as hashes
# (\`kith mail hash-password\`); ownerToken: the token \`kith up\` prints is a password too.
users:
  kith:
    addresses: [kith@home.arpa]
    ownerToken: true

outbound:
  # smarthost: { host: smtp.example.net, port: 587, username: me, password: secret }
  tls: opportunistic      # or require: never send in clear
  resolver: kith          # MX lookups go to the appliance's DNS service
  mtaSts: true            # honour recipient domains' MTA-STS policies (RFC 8461)

limits:
  messageBytes: 26214400
  headerBytes: 262144
  recipients: 100
  connections: 200
  commandsBeforeData: 100
  idleSeconds: 300

queue:
  retryInitialSeconds: 300
  retryMaxSeconds: 10800
  expireSeconds: 432000   # 5 days, then the sender gets a bounce (RFC 3464)
  concurrency: 20

dkim:
  selectors:
    - { name: kith-ed, algorithm: ed25519 }
    - { name: kith-rsa, algorithm: rsa }

# MX, SPF, DKIM and DMARC records the service writes into dns/zones/<domain>.zone.
publish:
  enabled: true
  spf: "v=spf1 mx -all"
  dmarc: "v=DMARC1; p=none"
`;

const mailConfig: ConfigSpec<MailConfig> = {
  defaults: { [MAIL_YAML]: DEFAULT_MAIL_YAML },
  load: loadMailConfig,
  view: (c) => ({ domains: Object.keys(c.settings.domains), hostname: c.settings.hostname }),
  crossCheck: mailCrossCheck,
};

export default mailConfig;
