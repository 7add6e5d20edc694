/** Repository names: one rule, pure (config validation imports it too). */

// The one repository-name rule (git URLs, the store API, `kith repo create`, and
// storage.yaml's allowNonFastForward): one path segment of 1-64 letters, digits, dot, dash,
// underscore; no leading dot or dash (so no "..", no hidden files, no option-like names),
// no ".git" or ".lock" ending — nothing that could step outside the root.
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

export const REPO_NAME_RULE = "a repository name is 1-64 of letters, digits, '.', '_' and '-', starts with a letter, digit or '_', has no '..' and does not end in .git or .lock";

export function isValidRepoName(name: string): boolean {
  return NAME_RE.test(name) && !name.endsWith('.git') && !name.endsWith('.lock') && !name.includes('..');
}
