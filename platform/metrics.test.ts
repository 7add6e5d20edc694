import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';

describe('metrics', () => {
  it('renders counters and gauges in Prometheus text format, escaping label values', () => {
    const m = createMetrics();
    const c = m.counter('kith_queries_total', 'Queries answered.');
    c.inc({ rcode: 'NOERROR' });
    c.inc({ rcode: 'NOERROR' }, 2);
    c.inc({ rcode: 'say "hi"\\\n' });
    m.gauge('kith_zones', 'Zones served.').set(3);
    expect(m.render()).toBe(
      '# HELP kith_queries_total Queries answered.\n# TYPE kith_queries_total counter\n' +
        'kith_queries_total{rcode="NOERROR"} 3\nkith_queries_total{rcode="say \\"hi\\"\\\\\\n"} 1\n' +
        '# HELP kith_zones Zones served.\n# TYPE kith_zones gauge\nkith_zones 3\n',
    );
  });
  it('a series resolved once with with() counts into the same series as inc(labels)', () => {
    const m = createMetrics();
    const c = m.counter('kith_dns_queries_total', 'Queries by transport.');
    const udp = c.with({ transport: 'udp' });
    udp.inc();
    udp.inc(2);
    c.inc({ transport: 'udp' });
    c.with().inc();
    expect(c.get({ transport: 'udp' })).toBe(4);
    expect(c.get()).toBe(1);
    expect(m.render()).toContain('kith_dns_queries_total{transport="udp"} 4\n');
    expect(() => udp.inc(-1)).toThrow(/cannot decrease/);
  });

  it('refuses bad names, decreasing counters and type clashes', () => {
    const m = createMetrics();
    expect(() => m.counter('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => m.counter('ok', 'x').inc({}, -1)).toThrow(/cannot decrease/);
    expect(() => m.gauge('ok', 'x')).toThrow(/already registered as a counter/);
  });
});
