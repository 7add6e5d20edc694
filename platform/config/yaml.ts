/**
 * YAML config files validated by a zod schema, with every problem pointing at file, line
 * and field: YAML syntax errors carry their line; schema errors are mapped from the zod
 * issue path back to the YAML node's position.
 */
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import type { ConfigIssue, ConfigResult, ConfigSource } from './spec.ts';

export interface YamlFileOptions {
  /** When the file is absent: use this value (validated), or report it missing. */
  missing?: 'empty' | 'error';
}

/** Parse and validate one YAML file. An absent file validates `{}` unless missing: 'error'. */
export async function loadYamlFile<S extends z.ZodType>(
  source: ConfigSource,
  file: string,
  schema: S,
  opts: YamlFileOptions = {},
): Promise<ConfigResult<z.infer<S>>> {
  const text = await source.read(file);
  if (text === undefined) {
    if (opts.missing === 'error') return { ok: false, issues: [{ file, message: 'file is missing' }] };
    return validate(file, {}, schema, undefined, undefined);
  }
  return parseYamlText(file, text, schema);
}

export function parseYamlText<S extends z.ZodType>(file: string, text: string, schema: S): ConfigResult<z.infer<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, message: firstLine(e.message) };
      }),
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { ok: false, issues: [{ file, message: `cannot read YAML: ${(err as Error).message}` }] };
  }
  return validate(file, data, schema, doc, lineCounter);
}

function validate<S extends z.ZodType>(
  file: string,
  data: unknown,
  schema: S,
  doc: Document | undefined,
  lines: LineCounter | undefined,
): ConfigResult<z.infer<S>> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues: ConfigIssue[] = parsed.error.issues.map((issue) => {
    const fieldPath = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    let message = issue.message;
    // An unknown key is best pointed at itself, not at the mapping that holds it.
    if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
      fieldPath.push(issue.keys[0]!);
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    }
    const field = fieldPath.length > 0 ? fieldPath.join('.') : undefined;
    const line = doc && lines ? lineOf(doc, lines, fieldPath, issue.code === 'unrecognized_keys') : undefined;
    return { file, ...(line !== undefined ? { line } : {}), ...(field ? { field } : {}), message };
  });
  return { ok: false, issues };
}

/** The line of the deepest node along `fieldPath` that exists (a missing key points at its parent). */
function lineOf(doc: Document, lines: LineCounter, fieldPath: (string | number)[], lastIsKey = false): number | undefined {
  if (lastIsKey && fieldPath.length > 0) {
    const parent = fieldPath.length === 1 ? doc.contents : doc.getIn(fieldPath.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === fieldPath[fieldPath.length - 1]);
      if (pair && isNode(pair.key) && pair.key.range) return lines.linePos(pair.key.range[0]).line;
    }
  }
  for (let n = fieldPath.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(fieldPath.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return 1;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
