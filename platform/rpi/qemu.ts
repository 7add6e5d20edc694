/**
 * Booting the Pi image's kernel and initramfs under qemu's arm64 `virt` machine, for tests
 * and benchmarks: there is no Pi model in Debian's qemu that runs this firmware chain, so
 * the check is "the same kernel, initramfs and data partition, on a virtual board". The
 * whole SD-card image is attached as a virtio disk, so PID 1 finds its data partition by
 * label (/dev/vda2) exactly as it finds mmcblk0p2 on a Pi.
 */
import type { Forward } from '../kvm/qemu.ts';
import { startQemuProcess, type QemuProcess } from '../image/qemu-process.ts';

export const VIRT_APPEND = 'console=ttyAMA0 panic=-1 quiet';

export interface VirtOptions {
  kernel: string;
  initrd: string;
  disk?: string;
  forwards: Forward[];
  memoryMiB?: number;
  cpus?: number;
  append?: string;
  /** The virtual RTC's start (qemu -rtc base=…), e.g. 2001-01-01: a board whose clock is wrong at power-on, as a Pi's is. */
  rtcBase?: string;
  /**
   * A tap device (its name, e.g. tap0) to use instead of qemu's user-mode network, which
   * carries no multicast: on a tap link the guest's mDNS reaches whoever owns the device.
   * `forwards` do not apply then.
   */
  tap?: string;
  /**
   * qemu's user network with restrict=on: the guest reaches nothing on the host or beyond
   * (10.0.2.2:123 included, where another test's chronyd may be listening); DHCP and TCP
   * forwards still work, UDP forwards do not (slirp drops the guest's replies). For a boot
   * that must see no time server.
   */
  isolated?: boolean;
}

/** qemu-system-aarch64 argv. Pure. */
export function virtArgs(o: VirtOptions): string[] {
  const fwd = o.forwards.map((f) => `,hostfwd=${f.proto}:${f.hostAddress ?? '127.0.0.1'}:${f.hostPort}-:${f.guestPort}`).join('');
  const args = [
    '-M', 'virt', '-cpu', 'cortex-a72', '-accel', 'tcg', '-m', String(o.memoryMiB ?? 1024), '-smp', String(o.cpus ?? 2),
    '-nographic', '-no-reboot', '-monitor', 'none',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.append ?? VIRT_APPEND,
    ...(o.tap
      ? ['-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=n0']
      : ['-nic', `user,model=virtio-net-pci${o.isolated ? ',restrict=on' : ''}${fwd}`]),
  ];
  if (o.disk) args.push('-drive', `file=${o.disk},format=raw,if=virtio`);
  if (o.rtcBase) args.push('-rtc', `base=${o.rtcBase}`);
  return args;
}

export type VirtVm = QemuProcess;

export function bootVirt(o: VirtOptions & { echo?: NodeJS.WritableStream }): VirtVm {
  return startQemuProcess('qemu-system-aarch64', virtArgs(o), o.echo);
}
