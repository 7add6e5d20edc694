/**
 * Loading a zone from a ConfigSource (the config working tree, or a git tree being pushed).
 *
 * ConfigSource reads are asynchronous while parseZone is pure and synchronous, so the files
 * named by $INCLUDE are found and read first (same path rules and depth bound as the
 * parser), then the parser runs over the prefetched texts.
 */
import type { ConfigSource } from '../../../platform/config/spec.ts';
import { lexSteps } from './lexer.ts';
import { runStepsAsync } from './steps.ts';
import { parseZoneAsync, resolveIncludePath, type ParseZoneOptions, type ParseZoneResult } from './parse.ts';

const MAX_FILES = 64;

/** `append`: master-file text parsed after the file's own (the local names of the home zone). */
export async function loadZone(source: ConfigSource, opts: { file: string; origin: string; defaultTtl?: number; append?: string; maxRecords?: ParseZoneOptions['maxRecords'] }): Promise<ParseZoneResult> {
  let main: string | undefined;
  try {
    main = await source.read(opts.file);
  } catch (e) {
    return { ok: false, issues: [{ file: opts.file, line: 0, message: `cannot read: ${(e as Error).message}` }] };
  }
  if (main === undefined) return { ok: false, issues: [{ file: opts.file, line: 0, message: 'zone file not found' }] };
  const files = new Map<string, string>();
  const queue: Array<{ file: string; text: string; depth: number }> = [{ file: opts.file, text: main, depth: 0 }];
  while (queue.length > 0 && files.size < MAX_FILES) {
    const { file, text, depth } = queue.shift()!;
    // Only a file that names $INCLUDE needs lexing here (the parser lexes it again).
    if (depth >= 8 || !/\$include/i.test(text)) continue;
    for (const entry of (await runStepsAsync(lexSteps(text))).entries) {
      const t = entry.tokens;
      if (entry.blankStart || t[0].quoted || t[0].text.toUpperCase() !== '$INCLUDE' || t.length < 2) continue;
      const path = resolveIncludePath(file, t[1].text);
      if (path === null || files.has(path)) continue;
      let inc: string | undefined;
      try {
        inc = await source.read(path);
      } catch {
        inc = undefined;
      }
      if (inc === undefined) continue; // the parser reports it, with file and line
      files.set(path, inc);
      queue.push({ file: path, text: inc, depth: depth + 1 });
    }
  }
  const { append, ...parseOpts } = opts;
  // In slices: a big zone set is read beside the one being served, which keeps answering.
  return parseZoneAsync(append ? `${main}\n${append}` : main, { ...parseOpts, include: (p) => files.get(p) });
}
