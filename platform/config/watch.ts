/**
 * Watch a config folder and call back once per burst of changes. Editors and git write a
 * file in several steps (temp file, rename), so events are debounced.
 */
import * as fs from 'node:fs';

export interface ConfigWatch {
  close(): void;
}

export function watchConfig(dir: string, onChange: () => void, debounceMs = 50): ConfigWatch {
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  let watcher: fs.FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;
  const start = () => {
    try {
      watcher = fs.watch(dir, { recursive: true, persistent: false }, fire);
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
        retry();
      });
    } catch {
      retry();
    }
  };
  // The folder may not exist yet, or may be replaced wholesale: keep trying to re-attach.
  const retry = () => {
    clearTimeout(poll);
    poll = setTimeout(() => {
      start();
      if (watcher) fire();
    }, 500);
  };
  start();
  return {
    close() {
      clearTimeout(timer);
      clearTimeout(poll);
      watcher?.close();
    },
  };
}
