/**
 * qemu-system-x86_64 command lines for booting a kvm image. Pure: options in, argv out.
 * The kernel is loaded directly (-kernel/-initrd): an ELF vmlinux boots through its PVH
 * note, skipping the bzImage decompressor; user-mode networking gives the guest
 * 10.0.2.15 by DHCP and forwards host ports to it.
 */

export interface Forward {
  proto: 'tcp' | 'udp';
  hostPort: number;
  guestPort: number;
  /** Host address to listen on; 127.0.0.1 unless the VM should be reachable from the LAN. */
  hostAddress?: string;
}

export interface QemuOptions {
  kernel: string;
  initrd: string;
  append: string;
  accel: 'kvm' | 'tcg';
  memoryMiB: number;
  cpus: number;
  forwards: Forward[];
  /** A raw disk image attached as the first virtio disk (/dev/vda). */
  dataDisk?: string;
}

export function qemuArgs(o: QemuOptions): string[] {
  const fwd = o.forwards.map((f) => `,hostfwd=${f.proto}:${f.hostAddress ?? '127.0.0.1'}:${f.hostPort}-:${f.guestPort}`).join('');
  const args = [
    '-nodefaults', '-no-reboot', '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
    '-accel', o.accel, '-cpu', o.accel === 'kvm' ? 'host' : 'max',
    '-m', String(o.memoryMiB), '-smp', String(o.cpus),
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.append,
    '-nic', `user,model=virtio-net-pci${fwd}`,
  ];
  if (o.dataDisk) args.push('-drive', `file=${o.dataDisk},format=raw,if=virtio`);
  return args;
}

/** `apt-cache depends linux-image-amd64` output → the versioned kernel package it pulls in. */
export function kernelPackageFromDepends(text: string): string | undefined {
  return /Depends:\s*(linux-image-\d[^\s]*)/.exec(text)?.[1];
}
