/**
 * How a service's configuration is described, read and validated.
 *
 * Config files come from a ConfigSource: a working tree on disk (the running service) or a
 * git tree being pushed (the storage service validates a push before accepting it), so the
 * same validation runs in both places. Problems are values that name file, line and field.
 */

/** Read-only view of a config tree. Paths are relative to the tree root, with '/' separators. */
export interface ConfigSource {
  /** The file's text, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** Entries directly under a folder (names only; folders end with '/'); [] when absent. */
  list(dir: string): Promise<string[]>;
}

export interface ConfigIssue {
  /** Path relative to the config tree root, e.g. 'dns/zones/home.arpa.zone'. */
  file: string;
  /** 1-based line, when known. */
  line?: number;
  column?: number;
  /** Dotted field path within the file, e.g. 'upstreams.0', when known. */
  field?: string;
  message: string;
}

export type ConfigResult<C> = { ok: true; value: C } | { ok: false; issues: ConfigIssue[] };

export interface ConfigSpec<C> {
  /** Files seeded into a new config repository: path (relative to the tree root) → content. */
  defaults: Record<string, string>;
  /** Read and validate this service's config from a tree. Never throws for bad input. */
  load(source: ConfigSource): Promise<ConfigResult<C>>;
}

/** 'dns/dns.yaml:12: upstreams.0: expected an IP address' */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${issue.file}:${issue.line}` : issue.file;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}
