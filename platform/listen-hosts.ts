/**
 * Where an appliance service's listeners bind. Protocol listeners (DNS, git, SMTP, ...)
 * face the home network; the health and metrics listener stays on loopback, where only
 * PID 1 and the box itself reach it (issue 11, item 15: it answered anyone, with
 * repository names in metric labels). A test image exposes it to the LAN because its test
 * reaches it through qemu's port forwarding; even then platform/health.ts gives remote
 * clients only the status word, and /metrics only with the owner's token.
 *
 * One function, so that whatever computes a service's launch (the rpi plan, PID 1, a
 * future kvm plan) asks the same question.
 */
export const LOOPBACK_HOST = '127.0.0.1';
export const ALL_HOSTS = '0.0.0.0';

export interface ListenPolicy {
  /** Test images only: the health listener on every address too. */
  exposeHealth?: boolean;
}

export function applianceListenHost(listener: string, policy: ListenPolicy = {}): string {
  return listener === 'health' && !policy.exposeHealth ? LOOPBACK_HOST : ALL_HOSTS;
}
