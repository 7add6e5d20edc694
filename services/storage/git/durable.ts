// Durable file writes for the git store. Sealed services cannot fsync (Node refuses it
// under the permission model), so files are written through O_DSYNC descriptors and
// platform/durable.ts does temp + rename; fsyncPath is a no-op where fsync is refused.
import { promises as fsp } from 'node:fs';
import { fsyncDir, writeFileDurable as platformWrite } from '../../../platform/durable.ts';

export { fsyncDir };

/** fsync a file by path where allowed (unsealed tools and tests); sealed: written O_DSYNC already. */
export async function fsyncPath(p: string): Promise<void> {
  if ((process as { permission?: unknown }).permission !== undefined) return;
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const dir = file.slice(0, file.lastIndexOf('/'));
  await fsp.mkdir(dir, { recursive: true });
  await platformWrite(file, data);
}
