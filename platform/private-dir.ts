/**
 * Folders that can hold secrets (a data folder, links/, tls/, the CA's pki/) are the
 * owner's alone: 0700, also when they already existed with a wider mode (made by an older
 * kith, or by hand). Files in them are written 0600 by their writers (writeFileDurable's
 * `mode`).
 */
import { promises as fsp } from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p with mode 0700, then make sure the folder itself is 0700. */
export async function makePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await fsp.chmod(dir, PRIVATE_DIR_MODE);
}
