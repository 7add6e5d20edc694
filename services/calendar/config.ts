/**
 * The calendar service's configuration, read from the config tree:
 *
 *   calendar/calendar.yaml   users (password hashes), sharing between users, limits, and
 *                            the SRV/TXT records published for discovery (RFC 6764)
 *
 * Imports nothing from other services (the config registry is built from every
 * services/<name>/config.ts). Every problem names file, line and field.
 */
import { z } from 'zod';
import { loadYamlFile } from '../../platform/config/yaml.ts';
import { isPasswordHash } from '../../platform/passwords.ts';
import type { ConfigIssue, ConfigResult, ConfigSource, ConfigSpec } from '../../platform/config/spec.ts';

export const CALENDAR_YAML = 'calendar/calendar.yaml';


const UserName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'user names are lower-case letters, digits, ".", "_" and "-" (at most 63), starting with a letter or digit');
const CollectionName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$/, 'collection names are letters, digits, ".", "_" and "-", starting with a letter or digit');

const User = z.object({
  /** 'owner-token': the appliance owner's access token (kith up prints it), provisioned as a hash. */
  password: z.literal('owner-token', { message: "password may only be 'owner-token' (the owner's access token); give other users a passwordHash" }).optional(),
  /** From `kith calendar hash-password`. */
  passwordHash: z.string().refine(isPasswordHash, 'expected scrypt$N$r$p$salt$hash (N a power of two from 1024, needing at most 256 MiB): make one with `kith calendar hash-password`').optional(),
  /** Shown as the principal's displayname. */
  name: z.string().max(200).optional(),
}).strict().superRefine((u, ctx) => {
  if ((u.password === undefined) === (u.passwordHash === undefined)) ctx.addIssue({ code: 'custom', message: "give exactly one of password: owner-token or passwordHash" });
});

const Share = z.object({
  owner: UserName,
  collection: CollectionName,
  with: UserName,
  access: z.enum(['read', 'read-write']),
}).strict();

export const CalendarSettingsSchema = z.object({
  users: z.record(UserName, User).default({}),
  shares: z.array(Share).default([]),
  limits: z.object({
    /** Largest request body (PUT, REPORT, PROPFIND...); more gets 413. */
    maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    /** Stored bytes per user (RFC 4331 quota); more gets 507. */
    quotaBytes: z.number().int().min(1024).max(1024 ** 4).default(256 * 1024 * 1024),
    /** Collections per user. */
    maxCollections: z.number().int().min(1).max(10_000).default(200),
    /** Instances one expansion may produce (calendar-query, expand, free-busy). */
    maxInstances: z.number().int().min(10).max(1_000_000).default(10_000),
  }).strict().default({ maxBodyBytes: 1024 * 1024, quotaBytes: 256 * 1024 * 1024, maxCollections: 200, maxInstances: 10_000 }),
  /** RFC 6764 discovery records, committed to this zone file through the link (needs.configWrite). */
  publish: z.object({
    zone: z.string().regex(/^[a-z0-9.-]+$/i, 'expected a zone name such as home.arpa').optional(),
    /** Host name clients connect to (relative to the zone, or absolute with a final dot). */
    target: z.string().default('kith'),
    port: z.number().int().min(1).max(65535).default(443),
  }).strict().default({ target: 'kith', port: 443 }),
}).strict();

export type CalendarConfig = z.infer<typeof CalendarSettingsSchema>;

export async function loadCalendarConfig(source: ConfigSource): Promise<ConfigResult<CalendarConfig>> {
  const r = await loadYamlFile(source, CALENDAR_YAML, CalendarSettingsSchema);
  if (!r.ok) return r;
  const issues: ConfigIssue[] = [];
  const users = r.value.users;
  r.value.shares.forEach((s, i) => {
    if (!users[s.owner]) issues.push({ file: CALENDAR_YAML, field: `shares.${i}.owner`, message: `no user '${s.owner}' in users` });
    if (!users[s.with]) issues.push({ file: CALENDAR_YAML, field: `shares.${i}.with`, message: `no user '${s.with}' in users` });
    if (s.owner === s.with) issues.push({ file: CALENDAR_YAML, field: `shares.${i}.with`, message: 'a collection is shared with another user, not its owner' });
  });
  return issues.length > 0 ? { ok: false, issues } : r;
}

export const DEFAULT_CALENDAR_YAML = `# kith calendar: CalDAV and CardDAV. Clients find it at /.well-known/caldav.
# Each user sees only their own calendars and address books, and what is shared with them.

users:
  # The owner: the password is the access token \`kith up\` prints.
  kith:
    password: owner-token
  # Other users get a scrypt hash (kith calendar hash-password), e.g.
  # alice:
  #   passwordHash: "scrypt$16384$8$1$...$..."

# Share a collection with another user, read or read-write. For example:
#   - { owner: kith, collection: family, with: alice, access: read-write }
shares: []

limits:
  maxBodyBytes: 1048576     # largest request body; more is refused with 413
  quotaBytes: 268435456     # stored bytes per user; more is refused with 507
  maxCollections: 200       # calendars + address books per user
  maxInstances: 10000       # recurrence instances one query may expand

# SRV/TXT records for discovery (RFC 6764), written into dns/zones/<zone>.zone.
# For example: publish: { zone: home.arpa, target: kith, port: 443 }
publish: {}
`;

export const calendarConfig: ConfigSpec<CalendarConfig> = {
  defaults: { [CALENDAR_YAML]: DEFAULT_CALENDAR_YAML },
  load: loadCalendarConfig,
};

export default calendarConfig;
