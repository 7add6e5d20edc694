/** Running a client program to its end for the memory benches (git, dnsperf, swaks). */
import { spawn } from 'node:child_process';

/** Its stdout and stderr together once it exits 0; else an error with the last of them. */
export function command(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => { out += d; });
    c.stderr!.on('data', (d) => { out += d; });
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.slice(0, 6).join(' ')} exited ${code}:\n${out.slice(-2000)}`))));
  });
}
