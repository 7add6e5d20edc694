/**
 * A small file the supervisor rewrites while a service runs (revoked serials, device
 * passwords), followed without a restart: `onText` gets its content at once and again
 * whenever it changes ('' while it is missing). fs.watch on the folder reports most
 * changes at once; a rename into place is not always reported under the file's name, so
 * it is also looked at twice a second — a change is seen within a second either way.
 */
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';

export interface WatchedFile {
  /** Read the file now (a caller that must not wait for the next look). */
  refresh(): void;
  close(): void;
}

export function watchFile(file: string, onText: (text: string) => void): WatchedFile {
  let last: string | undefined;
  const refresh = () => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    if (text === last) return;
    last = text;
    onText(text);
  };
  refresh();
  let watcher: FSWatcher | undefined;
  const dir = path.dirname(file);
  if (existsSync(dir)) {
    try {
      watcher = watch(dir, refresh);
      watcher.unref();
    } catch { /* no inotify: the poll below still sees it */ }
  }
  const poll = setInterval(refresh, 500);
  poll.unref();
  return { refresh, close: () => { watcher?.close(); clearInterval(poll); } };
}
