/**
 * Test helper run as a child process by crash.test.ts (not part of the service):
 *   node test-writer.ts <gitdir> loop <start> <count> <tag>   writes, printing "ack <i> <commit>"
 *                                                          after each write has resolved
 *   node test-writer.ts <gitdir> cas <expectedHead> <tag>    one write with expectedHead:
 *                                                          prints "won <commit>" or "lost <actual>"
 */
import { openStore } from './store.ts';
import { ConflictError } from './errors.ts';

const [dir, mode, a, b, c] = process.argv.slice(2);
const tag = (mode === 'cas' ? b : c) ?? 'w';
const store = await openStore({ dir: dir!, pollMs: 0, lock: { timeoutMs: 20_000 } });
if (mode === 'loop') {
  const start = Number(a);
  const end = start + Number(b);
  for (let i = start; i < end; i++) {
    const { commit } = await store.write(`items/${tag}/${i % 7}/v.txt`, `value ${i}\n`, { message: `${tag} write ${i}` });
    process.stdout.write(`ack ${i} ${commit}\n`);
  }
} else if (mode === 'cas') {
  try {
    const { commit } = await store.write(`race/${tag}`, tag, { expectedHead: a! });
    process.stdout.write(`won ${commit}\n`);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    process.stdout.write(`lost ${err.actual}\n`);
  }
}
