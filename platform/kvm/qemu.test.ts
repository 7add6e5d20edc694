import { describe, expect, it } from 'vitest';
import { kernelPackageFromDepends, qemuArgs } from './qemu.ts';

describe('qemu command line', () => {
  it('boots the kernel directly with forwards and a data disk', () => {
    expect(qemuArgs({ kernel: 'K', initrd: 'I', append: 'console=ttyS0', accel: 'tcg', memoryMiB: 1024, cpus: 1, forwards: [{ proto: 'tcp', hostPort: 8080, guestPort: 80 }, { proto: 'udp', hostPort: 5353, guestPort: 53, hostAddress: '0.0.0.0' }], dataDisk: 'd.img' }).join(' '))
      .toBe('-nodefaults -no-reboot -display none -serial stdio -monitor none -accel tcg -cpu max -m 1024 -smp 1 -kernel K -initrd I -append console=ttyS0 -nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53 -drive file=d.img,format=raw,if=virtio');
  });
  it('finds the versioned kernel package', () => {
    expect(kernelPackageFromDepends('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe('linux-image-6.1.0-56-amd64');
    expect(kernelPackageFromDepends('nothing')).toBeUndefined();
  });
});
