/**
 * Machine facts a config is validated against (platform/config/spec.ts MachineFacts):
 * today, this machine's own addresses — what 'self' means in a config. The runner works
 * them out and passes them into every load, so validation never reads the machine itself
 * and storage, checking a push, validates exactly as the service will load.
 *
 * The addresses are given (`--address`, repeatable: `kith up` passes the loopback host its
 * services listen on) or read from the network interfaces (the appliance's DHCP address);
 * in the latter case they are looked at again every few seconds, since a lease can change.
 */
import * as os from 'node:os';
import type { MachineFacts } from './config/spec.ts';

/** The machine's addresses on its interfaces (not loopback, not link-local), or loopback when it has none. */
export function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.startsWith('fe80:'))) continue;
      out.push(a.address);
    }
  }
  return out.length > 0 ? out.sort() : ['127.0.0.1'];
}

/** How often interface addresses are looked at again when they are not given. */
export const FACTS_CHECK_MS = 5000;

/** Facts from given addresses, or from the interfaces. */
export function machineFacts(given: string[] = []): MachineFacts {
  return { addresses: given.length > 0 ? [...given] : interfaceAddresses() };
}

/** Call `onChange` when the interface addresses change (nothing when they were given). Returns a stop function. */
export function watchFacts(given: string[], current: () => MachineFacts, onChange: (next: MachineFacts) => void): () => void {
  if (given.length > 0) return () => {};
  const timer = setInterval(() => {
    const next = machineFacts();
    if (next.addresses.join(' ') !== current().addresses.join(' ')) onChange(next);
  }, FACTS_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
