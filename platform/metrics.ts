/**
 * Metrics in the Prometheus text exposition format (version 0.0.4): counters and gauges
 * with labels. Served by the runner at GET /metrics of each service's health listener.
 */
export type Labels = Record<string, string | number>;

export interface Counter {
  inc(labels?: Labels, n?: number): void;
  get(labels?: Labels): number;
  /** The series for these labels, resolved once: for hot paths (a query, a packet). */
  with(labels?: Labels): { inc(n?: number): void };
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
  get(labels?: Labels): number;
}

export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  /** The whole registry as Prometheus text. */
  render(): string;
}

interface Family {
  type: 'counter' | 'gauge';
  help: string;
  values: Map<string, number>;
  collect?: () => void;
  /** Counts of series resolved with with(), not yet added into values. */
  cells?: Map<string, { n: number }>;
}

function flush(f: Family): void {
  if (!f.cells) return;
  for (const [key, c] of f.cells) {
    if (c.n === 0) continue;
    f.values.set(key, (f.values.get(key) ?? 0) + c.n);
    c.n = 0;
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function createMetrics(): Metrics {
  const families = new Map<string, Family>();
  const family = (name: string, help: string, type: Family['type']): Family => {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}: use [a-zA-Z_:][a-zA-Z0-9_:]*`);
    let f = families.get(name);
    if (!f) {
      f = { type, help, values: new Map() };
      families.set(name, f);
    } else if (f.type !== type) {
      throw new Error(`metric ${name} is already registered as a ${f.type}`);
    }
    return f;
  };
  return {
    counter(name, help) {
      const f = family(name, help, 'counter');
      const add = (key: string, n: number) => {
        if (n < 0) throw new Error(`counter ${name} cannot decrease`);
        f.values.set(key, (f.values.get(key) ?? 0) + n);
      };
      return {
        inc: (labels, n = 1) => add(labelKey(labels), n),
        get: (labels) => {
          flush(f);
          return f.values.get(labelKey(labels)) ?? 0;
        },
        with(labels) {
          // A resolved series counts into a plain number (one per series, shared by every
          // with() of the same labels), added into the family when read (get, render): no
          // Map lookup per packet.
          const key = labelKey(labels);
          f.cells ??= new Map();
          let cell = f.cells.get(key);
          if (!cell) f.cells.set(key, (cell = { n: 0 }));
          const c = cell;
          return {
            inc: (n = 1) => {
              if (n < 0) throw new Error(`counter ${name} cannot decrease`);
              c.n += n;
            },
          };
        },
      };
    },
    gauge(name, help) {
      const f = family(name, help, 'gauge');
      return {
        set: (value, labels) => void f.values.set(labelKey(labels), value),
        get: (labels) => f.values.get(labelKey(labels)) ?? 0,
      };
    },
    render() {
      const out: string[] = [];
      for (const [name, f] of families) {
        out.push(`# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
        out.push(`# TYPE ${name} ${f.type}`);
        flush(f);
        if (f.values.size === 0 && f.type === 'counter') out.push(`${name} 0`);
        for (const [key, v] of f.values) out.push(`${name}${key} ${formatValue(v)}`);
      }
      return out.join('\n') + '\n';
    },
  };
}

// Most calls pass one label (`{ transport: 'udp' }`) on a hot path: remember those keys.
const SINGLE_LABEL_KEYS = new Map<string, string>();

function labelKey(labels?: Labels): string {
  if (!labels) return '';
  let only: string | undefined;
  let n = 0;
  for (const k in labels) {
    only = k;
    if (++n > 1) break;
  }
  if (n === 1) {
    const memo = `${only}\0${labels[only!]}`;
    let key = SINGLE_LABEL_KEYS.get(memo);
    if (key === undefined) {
      key = formatLabels(labels);
      if (SINGLE_LABEL_KEYS.size < 4096) SINGLE_LABEL_KEYS.set(memo, key);
    }
    return key;
  }
  return formatLabels(labels);
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const parts = keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
