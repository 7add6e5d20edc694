/**
 * Errors of the versioned store. Each carries a stable `code`, the HTTP status it maps to,
 * and a message that says what to do (STYLE.md habit 6: errors are values at protocol edges;
 * http.ts turns any StoreError into `{ error: code, message, ...details }`).
 */

export class StoreError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;
  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

/**
 * Compare-and-swap failed: the branch head (or the file's blob, for `expectedBlob`) is not
 * what the caller expected. `actual` is null when the branch (or file) does not exist.
 */
export class ConflictError extends StoreError {
  readonly expected: string | null;
  readonly actual: string | null;
  constructor(expected: string | null, actual: string | null, what: 'head' | 'blob' = 'head', path?: string) {
    super(
      'conflict',
      409,
      what === 'head'
        ? `the branch head is ${actual ?? '(none)'}, not ${expected ?? '(none)'}: re-read, re-apply your change and retry with the new head`
        : `${path} is ${actual ?? '(absent)'}, not ${expected ?? '(absent)'}: re-read it, re-apply your change and retry`,
      { expected, actual, ...(what === 'blob' ? { path } : {}) },
    );
    this.name = 'ConflictError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** A path that the store refuses (traversal, `.git`, empty segments, too long, ...). */
export class PathError extends StoreError {
  constructor(path: string, reason: string) {
    super('bad-path', 400, `bad path ${JSON.stringify(path.length > 200 ? path.slice(0, 200) + '…' : path)}: ${reason}`);
    this.name = 'PathError';
  }
}

/** A path whose parent is a file, or a file write onto a folder. */
export class PathConflictError extends StoreError {
  constructor(path: string, reason: string) {
    super('path-conflict', 409, `${path}: ${reason}`);
    this.name = 'PathConflictError';
  }
}

/** A configured size limit was exceeded; the message names the limit and its value. */
export class LimitError extends StoreError {
  constructor(limit: string, max: number, actual: number, what: string) {
    super('too-large', 413, `${what} is ${actual} bytes, over the limit ${limit} = ${max} bytes: make it smaller or raise ${limit}`, {
      limit,
      max,
      actual,
    });
    this.name = 'LimitError';
  }
}

/** Another process held the branch lock for longer than the lock timeout. */
export class LockedError extends StoreError {
  constructor(lockFile: string, waitedMs: number) {
    super('locked', 503, `the branch is locked by another writer (${lockFile}) and stayed locked for ${waitedMs} ms: retry shortly; if no writer is running, remove the lock file`);
    this.name = 'LockedError';
  }
}

export class NotFoundError extends StoreError {
  constructor(what: string, hint: string) {
    super('not-found', 404, `${what} does not exist: ${hint}`);
    this.name = 'NotFoundError';
  }
}

/**
 * The repository's pre-commit hook refused the change (config.git: the new tree does not
 * validate). `issues` are `file:line: field: problem` lines; nothing changed.
 */
export class RefusedError extends StoreError {
  readonly issues: string[];
  constructor(issues: string[], what = 'the change') {
    super('invalid', 422, `${what} was refused; nothing changed:\n${issues.map((i) => `  ${i}`).join('\n')}`, { issues });
    this.name = 'RefusedError';
    this.issues = issues;
  }
}
