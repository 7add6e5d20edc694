import { describe, expect, it } from 'vitest';
import { virtArgs } from './qemu.ts';

describe('virt argv', () => {
  it('boots kernel + initramfs with forwards and the image as a virtio disk', () => {
    expect(virtArgs({ kernel: 'K', initrd: 'I', disk: 'D', forwards: [{ proto: 'udp', hostPort: 5353, guestPort: 53 }, { proto: 'tcp', hostPort: 8080, guestPort: 8080 }] })).toEqual([
      '-M', 'virt', '-cpu', 'cortex-a72', '-accel', 'tcg', '-m', '1024', '-smp', '2', '-nographic', '-no-reboot', '-monitor', 'none',
      '-kernel', 'K', '-initrd', 'I', '-append', 'console=ttyAMA0 panic=-1 quiet',
      '-nic', 'user,model=virtio-net-pci,hostfwd=udp:127.0.0.1:5353-:53,hostfwd=tcp:127.0.0.1:8080-:8080',
      '-drive', 'file=D,format=raw,if=virtio',
    ]);
  });

  it('puts the guest on a tap device instead of the user-mode network when asked', () => {
    const a = virtArgs({ kernel: 'K', initrd: 'I', forwards: [], tap: 'tap0' });
    expect(a).not.toContain('-nic');
    expect(a.slice(a.indexOf('-netdev'))).toEqual(['-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=n0']);
  });

  it('isolates the guest from the host (restrict=on) when asked, forwards kept', () => {
    const a = virtArgs({ kernel: 'K', initrd: 'I', forwards: [{ proto: 'tcp', hostPort: 8080, guestPort: 80 }], isolated: true });
    expect(a[a.indexOf('-nic') + 1]).toBe('user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:8080-:80');
  });
});
