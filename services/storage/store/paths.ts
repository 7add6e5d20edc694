/**
 * Path validation for the store: a path is `seg/seg/.../name`, relative, UTF-8, and safe to
 * check out with real git on any OS. Refuses what `git fsck --strict` refuses in tree
 * entries (empty, `.`, `..`, `.git` and its HFS+/NTFS aliases, `.gitmodules`) plus control
 * characters and backslashes (hostile on Windows checkouts), with length limits.
 * Pure: strings in, segments out, PathError on refusal.
 */
import { PathError } from './errors.ts';

export interface PathLimits {
  /** Whole path in UTF-8 bytes (default 1024). */
  maxPathBytes: number;
  /** One segment in UTF-8 bytes (default 255, the usual file-name limit). */
  maxSegmentBytes: number;
  /** Number of segments (default 32). */
  maxDepth: number;
}

export const DEFAULT_PATH_LIMITS: PathLimits = { maxPathBytes: 1024, maxSegmentBytes: 255, maxDepth: 32 };

// Code points HFS+ ignores when comparing names: ".g\u200cit" is ".git" there (git's
// is_hfs_dotgit, CVE-2014-9390).
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;
const CONTROL = /[\u0000-\u001f\u007f]/;

function reservedSegment(seg: string): string | undefined {
  if (seg === '.' || seg === '..') return `the segment "${seg}" would leave the folder`;
  // NTFS drops trailing dots and spaces: ".git . " is ".git" there.
  const folded = seg.replace(HFS_IGNORABLE, '').replace(/[. ]+$/, '').toLowerCase();
  if (folded === '.git' || /^git~\d+$/.test(folded)) return `"${seg}" names git's own folder (.git)`;
  if (folded === '.gitmodules' || /^gitmod~\d+$/.test(folded)) return `"${seg}" is reserved (.gitmodules)`;
  return undefined;
}

/** Validate a file path; returns its segments. Throws PathError naming the rule broken. */
export function validatePath(path: unknown, limits: PathLimits = DEFAULT_PATH_LIMITS): string[] {
  if (typeof path !== 'string') throw new PathError(String(path), 'a path must be a string');
  if (path === '') throw new PathError(path, 'the path is empty: name a file, like "calendars/home/event.ics"');
  if (!path.isWellFormed()) throw new PathError(path, 'the path is not valid Unicode (lone surrogate)');
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > limits.maxPathBytes) throw new PathError(path, `the path is ${bytes} bytes, over the limit maxPathBytes = ${limits.maxPathBytes}`);
  if (CONTROL.test(path)) throw new PathError(path, 'control characters (including NUL and newlines) are not allowed');
  if (path.includes('\\')) throw new PathError(path, 'backslashes are not allowed: use "/" between folders');
  if (path.startsWith('/')) throw new PathError(path, 'the path must be relative: remove the leading "/"');
  if (path.endsWith('/')) throw new PathError(path, 'a file path must not end with "/"');
  const segs = path.split('/');
  if (segs.length > limits.maxDepth) throw new PathError(path, `${segs.length} segments, over the limit maxDepth = ${limits.maxDepth}`);
  for (const seg of segs) {
    if (seg === '') throw new PathError(path, 'empty segment ("//"): remove the doubled slash');
    const reserved = reservedSegment(seg);
    if (reserved) throw new PathError(path, reserved);
    const segBytes = Buffer.byteLength(seg, 'utf8');
    if (segBytes > limits.maxSegmentBytes) throw new PathError(path, `a segment is ${segBytes} bytes, over the limit maxSegmentBytes = ${limits.maxSegmentBytes}`);
  }
  return segs;
}

/** Validate a folder prefix for listing: '' (or '/') is the root; one trailing '/' is allowed. */
export function validatePrefix(prefix: unknown, limits: PathLimits = DEFAULT_PATH_LIMITS): string[] {
  if (prefix === '' || prefix === '/' || prefix === undefined) return [];
  if (typeof prefix !== 'string') throw new PathError(String(prefix), 'a prefix must be a string');
  return validatePath(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, limits);
}
