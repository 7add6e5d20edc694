import { describe, expect, it } from 'vitest';
import { buildDsn } from './dsn.ts';

describe('DSN (RFC 3464)', () => {
  it('is a multipart/report with a delivery-status part per failed recipient', () => {
    const text = buildDsn({
      reportingMta: 'kith.home.arpa',
      originalFrom: 'me@home.arpa',
      originalId: 'abc',
      arrival: new Date(0),
      now: new Date(1000),
      failed: [{ to: 'x@example.net', orcpt: 'alias@home.arpa', status: '5.1.1', diagnostic: '550 5.1.1 no such user\r\nBcc: injected', remoteMta: 'mx.example.net' }],
      headers: 'From: me@home.arpa\r\nSubject: hi\r\n',
    });
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@kith\.home\.arpa>\r\n/);
    expect(text).toContain('Content-Type: multipart/report; report-type=delivery-status;');
    expect(text).toContain('\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;kith.home.arpa\r\n');
    expect(text).toContain('Final-Recipient: rfc822;x@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n');
    expect(text).toContain('Original-Recipient: rfc822;alias@home.arpa');
    expect(text).not.toContain('\r\nBcc: injected');
    expect(text).toContain('Content-Type: text/rfc822-headers\r\n\r\nFrom: me@home.arpa\r\nSubject: hi\r\n');
    expect(text.split('\n').every((l) => l === '' || l.endsWith('\r') || l === text.split('\n').at(-1))).toBe(true);
  });
});
