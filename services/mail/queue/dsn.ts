/**
 * Delivery status notifications (RFC 3464, in a multipart/report of RFC 6522): what the
 * sender gets when a recipient refused the message (5xx) or it expired in the queue.
 * Sent from the null reverse path (RFC 5321 §4.5.5), so a bounce is never bounced.
 * Carries the original header section only (text/rfc822-headers), not the body.
 */
import { randomBytes } from 'node:crypto';

export interface FailedRecipient {
  to: string;
  orcpt: string;
  /** 5.x.x */
  status: string;
  /** The remote's reply, or why we gave up. */
  diagnostic: string;
  remoteMta?: string;
}

export interface DsnInput {
  reportingMta: string;
  originalFrom: string;
  originalId: string;
  arrival: Date;
  now: Date;
  failed: FailedRecipient[];
  /** The original message's header section (up to the blank line), CRLF lines. */
  headers: string;
}

const dateOf = (d: Date) => d.toUTCString().replace('GMT', '+0000');
const clean = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 900);
const xtextAddr = (a: string) => a.replace(/[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

export function buildDsn(d: DsnInput): string {
  const boundary = `kith-dsn-${randomBytes(8).toString('hex')}`;
  const human = [
    `This is the mail system at ${d.reportingMta}.`,
    '',
    'Your message could not be delivered to the following recipients:',
    '',
    ...d.failed.map((f) => `  <${f.orcpt}>: ${clean(f.diagnostic)}`),
    '',
    'The original message header is attached.',
  ];
  const perRcpt = d.failed.map((f) => [
    `Original-Recipient: rfc822;${xtextAddr(f.orcpt)}`,
    `Final-Recipient: rfc822;${xtextAddr(f.to)}`,
    'Action: failed',
    `Status: ${/^5\.\d{1,3}\.\d{1,3}$/.test(f.status) ? f.status : '5.0.0'}`,
    ...(f.remoteMta ? [`Remote-MTA: dns;${clean(f.remoteMta)}`] : []),
    `Diagnostic-Code: smtp;${clean(f.diagnostic)}`,
  ].join('\r\n'));
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${d.reportingMta}>`,
    `To: <${d.originalFrom}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${dateOf(d.now)}`,
    `Message-ID: <${d.originalId}.dsn.${randomBytes(4).toString('hex')}@${d.reportingMta}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns;${d.reportingMta}`,
    `X-Kith-Queue-ID: ${d.originalId}`,
    `Arrival-Date: ${dateOf(d.arrival)}`,
    '',
    perRcpt.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    d.headers.replace(/\r?\n$/, ''),
    '',
    `--${boundary}--`,
    '',
  ];
  return lines.join('\r\n');
}
