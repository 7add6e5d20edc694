/**
 * kith mail: accepts mail for the owner's domains on port 25 and forwards it per alias,
 * takes mail from the owner's devices on 587 (STARTTLS + AUTH) and 465 (TLS), signs it
 * with DKIM, and delivers through a smarthost or each domain's MX, from a durable queue
 * (on disk before the 250). Publishes its own MX/SPF/DKIM/DMARC records into the zone.
 * Think Postfix + OpenDKIM + OpenDMARC as a relay, in one sealed process.
 */
import { runServiceMain } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';
import mailConfig, { type MailConfig } from './config.ts';

const mail = defineService<MailConfig>({
  name: 'mail',
  description: 'SMTP relay: inbound for your domains, submission, DKIM, a durable queue',
  listeners: {
    health: { protocol: 'http', port: 9103, description: 'health and metrics' },
    smtp: { protocol: 'tcp', port: 25, tls: true, description: 'SMTP for your domains (STARTTLS)' },
    submission: { protocol: 'tcp', port: 587, tls: true, description: 'submission: STARTTLS, then AUTH' },
    submissions: { protocol: 'tcp', port: 465, tls: true, description: 'submission over implicit TLS' },
    control: { protocol: 'http', port: 9113, description: 'queue management for `kith mail queue` (owner token)' },
  },
  config: mailConfig,
  // A small young generation (a relay's garbage is short-lived buffers) and V8's
  // memory-saving mode: peak RssAnon under bench/mail 108 -> 46 MB, throughput unchanged.
  nodeFlags: ['--max-semi-space-size=1', '--optimize-for-size'],
  // Publishing MX/SPF/DKIM/DMARC records: commits to the zone files in config.git; MX and
  // SPF/DKIM/DMARC lookups go to the appliance's DNS service.
  needs: { configWrite: ['dns/zones/'], resolver: true },
  // Loaded at start, not with the bundle: the SMTP and mail-auth libraries take TLS and
  // HTTPS state as they load, which a startup snapshot (kvm images) cannot hold.
  start: async (ctx) => (await import('./service.ts')).startMail(ctx),
});

export default mail;
if (import.meta.main) await runServiceMain(mail, import.meta.url);
