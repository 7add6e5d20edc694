/**
 * Profiling help for the benchmark: a readable (not minified) bundle of the DNS service,
 * and a summary of a V8 .cpuprofile (self time per function), each hot function mapped
 * back to its source file and line through the `// path/file.ts` markers esbuild writes
 * before each module.
 *
 *   node bench/dns/profile.ts PROFILE.cpuprofile BUNDLE.mjs [--top 25]
 */
import * as esbuild from 'esbuild';
import { readFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(import.meta.dirname, '../..');
// As platform/build/bundle.ts: CommonJS dependencies call require() in an ESM bundle.
const REQUIRE_SHIM = "import { createRequire as __kithCreateRequire } from 'node:module'; const require = __kithCreateRequire(import.meta.url);";

/** The DNS service bundled like platform/build/bundle.ts does, but readable. */
export async function bundleForProfile(outDir: string): Promise<string> {
  const outfile = path.join(outDir, 'dns.mjs');
  await fsp.mkdir(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(repoRoot, 'services/dns/main.ts')],
    outfile, bundle: true, platform: 'node', format: 'esm', target: 'node24', minify: false, keepNames: true,
    treeShaking: true, logLevel: 'silent', banner: { js: REQUIRE_SHIM }, define: { 'process.env.NODE_ENV': '"production"' },
  });
  return outfile;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface Hot { selfPct: number; selfMs: number; fn: string; where: string }

/** Self time per function, biggest first, with source file:line where the bundle says. */
export function summarize(profileFile: string, bundleFile: string | undefined, top = 25): { totalMs: number; busyMs: number; hot: Hot[]; byFile: { file: string; selfPct: number }[] } {
  const p = JSON.parse(readFileSync(profileFile, 'utf8')) as CpuProfile;
  // Shares are of busy time: idle (waiting in epoll) is left out.
  const allHits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const totalMs = (p.endTime - p.startTime) / 1000;
  const msPerHit = totalMs / allHits;
  const totalHits = p.nodes.reduce((s, n) => s + (n.callFrame.functionName === '(idle)' ? 0 : n.hitCount ?? 0), 0) || 1;
  const bundleLines = bundleFile ? readFileSync(bundleFile, 'utf8').split('\n') : [];
  // Module start lines in the bundle: `// services/dns/wire/name.ts`
  const marks: { line: number; file: string }[] = [];
  bundleLines.forEach((l, i) => {
    // esbuild names each module relative to the working folder: keep from the repo's own roots on.
    const m = /^\/\/ (?:\S*?\/)?((?:services|platform|node_modules)\/\S+\.(?:ts|js|mjs|cjs))$/.exec(l);
    if (m) marks.push({ line: i, file: m[1]! });
  });
  const sourceOf = (line: number) => {
    let f: string | undefined;
    for (const m of marks) { if (m.line <= line) f = m.file; else break; }
    return f;
  };
  const srcCache = new Map<string, string[]>();
  const defLine = (file: string, fn: string): number | undefined => {
    if (!fn || file.startsWith('node_modules')) return undefined;
    let lines = srcCache.get(file);
    if (!lines) {
      try { lines = readFileSync(path.join(repoRoot, file), 'utf8').split('\n'); } catch { lines = []; }
      srcCache.set(file, lines);
    }
    const esc = fn.replace(/[$]/g, '\\$');
    const res = [new RegExp(`function\\*?\\s+${esc}\\b`), new RegExp(`(?:const|let)\\s+${esc}\\s*=`), new RegExp(`^\\s+(?:async\\s+|static\\s+|get\\s+|private\\s+)*${esc}\\s*\\(`), new RegExp(`\\b${esc}\\s*[:=(]`)];
    for (const re of res) {
      const i = lines.findIndex((l) => re.test(l));
      if (i >= 0) return i + 1;
    }
    return undefined;
  };
  const agg = new Map<string, { hits: number; fn: string; where: string }>();
  const fileAgg = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    const { functionName, url, lineNumber } = n.callFrame;
    if (!hits || functionName === '(idle)') continue;
    let where = url ? `${url.replace(/^file:\/\//, '')}:${lineNumber + 1}` : '(native)';
    let fileKey = url ? path.basename(url) : '(native/VM)';
    if (bundleFile && url.endsWith(path.basename(bundleFile))) {
      const src = sourceOf(lineNumber);
      if (src) {
        const l = defLine(src, functionName);
        where = `${src}${l ? `:${l}` : ''} (bundle:${lineNumber + 1})`;
        fileKey = src;
      }
    } else if (url.startsWith('node:')) fileKey = 'node internals';
    const key = `${functionName}|${where}`;
    const a = agg.get(key) ?? { hits: 0, fn: functionName || '(anonymous)', where };
    a.hits += hits;
    agg.set(key, a);
    fileAgg.set(fileKey, (fileAgg.get(fileKey) ?? 0) + hits);
  }
  const hot = [...agg.values()].sort((x, y) => y.hits - x.hits).slice(0, top)
    .map((a) => ({ selfPct: (100 * a.hits) / totalHits, selfMs: a.hits * msPerHit, fn: a.fn, where: a.where }));
  const byFile = [...fileAgg].map(([file, h]) => ({ file, selfPct: (100 * h) / totalHits })).sort((x, y) => y.selfPct - x.selfPct).slice(0, 15);
  return { totalMs, busyMs: totalHits * msPerHit, hot, byFile };
}

export function formatSummary(s: ReturnType<typeof summarize>): string {
  return [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s, of which busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s; shares below are of busy time`,
    'self%   function                          where',
    ...s.hot.map((h) => `${h.selfPct.toFixed(1).padStart(5)}%  ${h.fn.slice(0, 32).padEnd(32)}  ${h.where}`),
    '',
    'self% by file',
    ...s.byFile.map((f) => `${f.selfPct.toFixed(1).padStart(5)}%  ${f.file}`),
    '',
  ].join('\n');
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (!positionals[0]) {
    process.stderr.write('usage: node bench/dns/profile.ts PROFILE.cpuprofile [BUNDLE.mjs] [--top 25]\n');
    process.exit(2);
  }
  process.stdout.write(formatSummary(summarize(positionals[0], positionals[1], Number(values.top))));
}
