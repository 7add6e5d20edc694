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

/**
 * Facts about the machine a config is validated for. Passed in by whoever validates (the
 * running service, or storage checking a push), never read while validating, so the same
 * tree validates the same way everywhere and validation stays pure.
 */
export interface MachineFacts {
  /** The appliance's own addresses (what 'self' means in a config). */
  addresses: string[];
}

/**
 * A service's config spec. By convention it is the default export of
 * `services/<name>/config.ts`, which imports nothing from other services: the build
 * generates the registry of every spec from that convention (platform/config/registry.ts),
 * so storage validates every service's config without importing any service's source.
 */
export interface ConfigSpec<C> {
  /** Files seeded into a new config repository: path (relative to the tree root) → content. */
  defaults: Record<string, string>;
  /** Read and validate this service's config from a tree. Never throws for bad input. */
  load(source: ConfigSource, facts?: MachineFacts): Promise<ConfigResult<C>>;
  /**
   * What rules of other services may ask of this config, as a plain documented view
   * (platform/config/views.ts names each service's view type).
   */
  view?(value: C): unknown;
  /**
   * Rules spanning services (e.g. "each mail domain has a zone the appliance serves"),
   * given this service's validated config and every service's view by name (a service
   * whose config did not validate has no view). Issues should name both files.
   */
  crossCheck?(value: C, views: Readonly<Record<string, unknown>>): ConfigIssue[];
}

/** 'dns/dns.yaml:12: upstreams.0: expected an IP address' */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${issue.file}:${issue.line}` : issue.file;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}
