import { describe, expect, it } from 'vitest';
import { loadOrder, moduleIndex } from './modules.ts';
import type { ModInfo } from './elf.ts';

const db: Record<string, ModInfo> = {
  virtio: { name: 'virtio', depends: [], softPre: [], aliases: [] },
  virtio_ring: { name: 'virtio_ring', depends: [], softPre: [], aliases: [] },
  virtio_pci: { name: 'virtio_pci', depends: ['virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_ring', 'virtio'], softPre: [], aliases: [] },
  virtio_pci_legacy_dev: { name: 'virtio_pci_legacy_dev', depends: [], softPre: [], aliases: [] },
  virtio_pci_modern_dev: { name: 'virtio_pci_modern_dev', depends: [], softPre: [], aliases: [] },
  virtio_net: { name: 'virtio_net', depends: ['net_failover', 'virtio_ring', 'virtio'], softPre: [], aliases: [] },
  net_failover: { name: 'net_failover', depends: ['failover'], softPre: [], aliases: [] },
  failover: { name: 'failover', depends: [], softPre: [], aliases: [] },
  ext4: { name: 'ext4', depends: ['jbd2', 'mbcache', 'crc16'], softPre: ['crc32c'], aliases: [] },
  jbd2: { name: 'jbd2', depends: [], softPre: [], aliases: [] },
  mbcache: { name: 'mbcache', depends: [], softPre: [], aliases: [] },
  crc16: { name: 'crc16', depends: [], softPre: [], aliases: [] },
};

describe('module load order', () => {
  it('puts dependencies first, each once', () => {
    const r = loadOrder(['virtio_pci', 'virtio-net', 'ext4'], (n) => db[n]);
    expect(r).toEqual({ ok: true, value: ['virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_ring', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net', 'jbd2', 'mbcache', 'crc16', 'ext4'] });
  });
  it('skips built-ins and missing soft dependencies', () => {
    const r = loadOrder(['ext4'], (n) => db[n], new Set(['crc16']));
    expect(r).toEqual({ ok: true, value: ['jbd2', 'mbcache', 'ext4'] });
  });
  it('follows aliases to the module that provides them', () => {
    const idx = moduleIndex([...Object.values(db), { name: 'crc32c_intel', depends: [], softPre: [], aliases: ['crypto-crc32c'] }, { name: 'crc32c_generic', depends: [], softPre: [], aliases: ['crypto-crc32c'] }]);
    const withAlias = (n: string) => (n === 'ext4' ? { ...db.ext4, softPre: ['crypto-crc32c'] } : idx(n));
    expect(loadOrder(['ext4'], withAlias)).toEqual({ ok: true, value: ['crc32c_generic', 'jbd2', 'mbcache', 'crc16', 'ext4'] });
  });
  it('reports missing modules and cycles', () => {
    expect(loadOrder(['nope'], (n) => db[n])).toEqual({ ok: false, error: 'module nope not found (needed by the image)' });
    const cyc: Record<string, ModInfo> = { a: { name: 'a', depends: ['b'], softPre: [], aliases: [] }, b: { name: 'b', depends: ['a'], softPre: [], aliases: [] } };
    expect(loadOrder(['a'], (n) => cyc[n])).toEqual({ ok: false, error: 'dependency cycle: a -> b -> a' });
  });
});
