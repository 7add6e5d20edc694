/**
 * The mail service's settings schema (mail/mail.yaml) and the validated config's shape,
 * apart from the loader (config.ts), so the cross-service checks (crosscheck.ts) can name
 * the type without an import circle.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isPasswordHash } from '../../platform/passwords.ts';

export const MAIL_YAML = 'mail/mail.yaml';

const DomainName = z.string().transform((s) => s.toLowerCase().replace(/\.$/, '')).refine(
  (s) => /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.test(s),
  'expected a domain name such as example.org',
);
/** local@domain, with a dot-atom or any UTF-8 local part (SMTPUTF8). */
const Mailbox = z.string().refine((s) => /^[^\s@<>()\[\]\\,;:"]{1,64}@[^\s@<>]+\.[^\s@<>]+$/.test(s), 'expected an address such as someone@example.net');
const LocalPart = z.string().refine((s) => /^[^\s@<>()\[\]\\,;:"]{1,64}$/.test(s), 'expected the part before the @, e.g. postmaster');
const Hash = z.string().refine(isPasswordHash, "expected a password hash made by `kith mail hash-password` (scrypt$...), never the password itself");

/** host, host:port, [v6]:port; the port defaults to `port`. */
const hostPort = (port: number) => z.string().transform((s, ctx) => {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  const host = m ? m[1]! : s.replace(/^\[|\]$/g, '');
  const p = m ? Number(m[2]) : port;
  if (!host || p < 1 || p > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected a host with an optional port, e.g. smtp.example.net:587 or 192.0.2.1:${port}` });
    return z.NEVER;
  }
  return { host, port: p };
});

const Resolver = z.union([z.literal('kith'), hostPort(53)]).refine(
  (r) => r === 'kith' || isIP(r.host) !== 0,
  "expected 'kith' (the appliance's DNS service) or an IP address with an optional port",
);

export const MailSettingsSchema = z.object({
  /** The name this server greets with, and the target of the published MX records. */
  hostname: DomainName.default('kith.home.arpa'),
  /** The owner's domains: mail to these is accepted and forwarded per alias. */
  domains: z.record(DomainName, z.object({
    /** local part → one or more external mailboxes. */
    aliases: z.record(LocalPart, z.array(Mailbox).min(1)).default({}),
    /** Where mail to any other local part of this domain goes; absent: refused (550 5.1.1). */
    catchAll: z.array(Mailbox).min(1).optional(),
  }).strict()).default({}),
  /** Who may submit (ports 587 and 465) and as which envelope senders. */
  users: z.record(z.string().regex(/^[a-z0-9._-]{1,64}$/i, 'expected a user name of letters, digits, . _ -'), z.object({
    addresses: z.array(Mailbox).min(1),
    /** Password hashes (one per device if you like): `kith mail hash-password`. */
    passwords: z.array(Hash).default([]),
    /** The access token `kith up` prints is also this user's password (provisioned as a hash). */
    ownerToken: z.boolean().default(false),
    /**
     * Paired devices (`kith pair`) whose client certificate logs in as this user, without a
     * password. Absent: the ownerToken user takes every paired device of the owner.
     */
    devices: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a device name as paired: lower-case letters, digits and dashes')).optional(),
  }).strict()).default({}),
  outbound: z.object({
    /** Relay everything through this host; absent: deliver to each domain's MX. */
    smarthost: z.object({
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(587),
      /** starttls (upgrade on the plain port) or implicit (TLS from the first byte, port 465). */
      security: z.enum(['starttls', 'implicit']).default('starttls'),
      username: z.string().optional(),
      password: z.string().optional(),
    }).strict().optional(),
    /** opportunistic: STARTTLS when offered; require: never send in clear (4xx and retry). */
    tls: z.enum(['opportunistic', 'require']).default('opportunistic'),
    /** Verify the remote certificate (off by default: most MX certificates are unchecked, RFC 7435). */
    verifyCertificates: z.boolean().default(false),
    /** Where MX and address lookups go: the kith DNS service, never the host's resolver. */
    resolver: Resolver.default('kith'),
    /** Port of remote MX hosts (25; tests point it elsewhere). */
    mxPort: z.number().int().min(1).max(65535).default(25),
    /** Honour the MTA-STS policies (RFC 8461) of recipient domains when delivering to their MX. */
    mtaSts: z.boolean().default(true),
  }).strict().default({ tls: 'opportunistic', verifyCertificates: false, resolver: 'kith', mxPort: 25, mtaSts: true }),
  limits: z.object({
    messageBytes: z.number().int().min(1024).max(1 << 30).default(25 * 1024 * 1024),
    headerBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
    recipients: z.number().int().min(1).max(10_000).default(100),
    connections: z.number().int().min(1).max(100_000).default(200),
    commandsBeforeData: z.number().int().min(5).max(100_000).default(100),
    idleSeconds: z.number().int().min(1).max(3600).default(300),
  }).strict().default({ messageBytes: 25 * 1024 * 1024, headerBytes: 256 * 1024, recipients: 100, connections: 200, commandsBeforeData: 100, idleSeconds: 300 }),
  queue: z.object({
    retryInitialSeconds: z.number().min(0.05).max(86_400).default(300),
    retryMaxSeconds: z.number().min(0.05).max(86_400).default(3 * 3600),
    /** Give up and bounce after this long (RFC 5321 §4.5.4.1 suggests 4-5 days). */
    expireSeconds: z.number().min(1).max(60 * 86_400).default(5 * 86_400),
    concurrency: z.number().int().min(1).max(1000).default(20),
  }).strict().default({ retryInitialSeconds: 300, retryMaxSeconds: 3 * 3600, expireSeconds: 5 * 86_400, concurrency: 20 }),
  dkim: z.object({
    /** Selectors that sign each message; the service makes each key in its data folder. */
    selectors: z.array(z.object({
      name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62})$/i, 'expected a selector name of letters, digits and -'),
      algorithm: z.enum(['ed25519', 'rsa']),
    }).strict()).default([{ name: 'kith-ed', algorithm: 'ed25519' }, { name: 'kith-rsa', algorithm: 'rsa' }]),
  }).strict().default({ selectors: [{ name: 'kith-ed', algorithm: 'ed25519' }, { name: 'kith-rsa', algorithm: 'rsa' }] }),
  inbound: z.object({
    /** Check SPF, DKIM, DMARC and ARC and record them in Authentication-Results. */
    verify: z.boolean().default(true),
    /** Refuse at DATA mail that fails DMARC of a domain publishing p=reject. */
    enforceDmarcReject: z.boolean().default(true),
  }).strict().default({ verify: true, enforceDmarcReject: true }),
  /** Records the service writes into each domain's zone (dns/zones/<domain>.zone). */
  publish: z.object({
    enabled: z.boolean().default(true),
    spf: z.string().default('v=spf1 mx -all'),
    dmarc: z.string().default('v=DMARC1; p=none'),
    ttl: z.number().int().min(60).max(86_400).default(3600),
  }).strict().default({ enabled: true, spf: 'v=spf1 mx -all', dmarc: 'v=DMARC1; p=none', ttl: 3600 }),
}).strict();

export type MailSettings = z.infer<typeof MailSettingsSchema>;

export interface MailConfig {
  settings: MailSettings;
  /** Lines of mail.yaml where each domain and selector is declared (for cross-service messages). */
  lines: { domains: Record<string, number>; selectors: Record<string, number>; hostname?: number };
  /** The appliance's addresses this config was validated for, when known. */
  addresses?: string[];
}

