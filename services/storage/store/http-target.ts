/** The repository and path a /store/ URL names (pure: a string in, a Target or an HttpError out). */
import { HttpError } from '../http/kit.ts';
import { isValidRepoName } from '../git/repos.ts';

export const PREFIX = '/store/';

export interface Target {
  repo: string;
  /** The file or folder path ('' for the repository itself). */
  path: string;
  /** The URL ended with '/'. */
  dirForm: boolean;
}

export function parseTarget(pathname: string): Target {
  const parts = pathname.slice(PREFIX.length).split('/');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, 'bad-path', `bad percent-encoding in ${JSON.stringify(s.slice(0, 100))}: encode bytes as %XX`);
    }
  };
  let repo = decode(parts[0] ?? '');
  if (repo.endsWith('.git')) repo = repo.slice(0, -4);
  if (!isValidRepoName(repo)) {
    throw new HttpError(400, 'bad-repo', `bad repository name ${JSON.stringify(repo.slice(0, 100))}: use /store/<name>/<path>, name = 1-64 of letters, digits, '.', '_', '-', not starting with '.' or '-'`);
  }
  const segs = parts.slice(1).map(decode);
  for (const s of segs) if (s.includes('/')) throw new HttpError(400, 'bad-path', 'an encoded "/" (%2F) inside a path segment is not allowed');
  const dirForm = segs.length > 0 && segs[segs.length - 1] === '';
  if (dirForm) segs.pop();
  return { repo, path: segs.join('/'), dirForm };
}
