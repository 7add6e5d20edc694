/**
 * The rpi image's first stage (issue 16): a small initramfs that only mounts the root
 * partition and hands over to Node's init.
 *
 * Why: an initramfs lives in RAM the kernel can never reclaim (ramfs). With Node (91 MB)
 * and the bundles in it, ~100 MB of a 512 MB Pi Zero 2 W was gone before any service
 * started. On a read-only ext4 partition of the card they are ordinary file pages: read when
 * used, shared by every process, dropped under memory pressure.
 *
 * The first stage is Debian's busybox-static (arm64) running the short script below as
 * /init: mount /proc /sys /dev, load the few modules the root partition needs (SD host or
 * virtio block, ext4: `RPI_FIRST_STAGE_MODULES`), find the partition by its ext4 label
 * (`findfs`: vda2 under qemu, mmcblk0p2 on a Pi, whatever the kernel named it), mount it
 * read-only, move /dev /proc /sys onto it and `switch_root` into it, which frees the
 * initramfs and execs the root's /init (Node, PID 1 as before, platform/boot/init.ts). PID 1
 * then loads only the other modules (its boot.json lists those the first stage did not)
 * and leaves the mounts it finds in place.
 */

/** The root partition's ext4 label: the first stage looks for it (findfs LABEL=…). */
export const ROOT_LABEL = 'kith-root';

/** Where the first stage mounts the root partition before switching to it. */
export const NEW_ROOT = '/root';

/** The folders of the first stage's initramfs. */
export const FIRST_STAGE_DIRS = ['bin', 'dev', 'proc', 'sys', 'lib/modules', NEW_ROOT.slice(1)];

/** The first stage's module list (one guest path a line), read by its /init. */
export const FIRST_STAGE_MODULE_LIST = '/lib/modules/order';

/** busybox in the initramfs: one static program, the applets called by name through it. */
export const BUSYBOX = '/bin/busybox';

/**
 * What the root partition needs before it can be mounted: qemu's virtio block device
 * (tests), the Pi 4's SD host (sdhci-iproc), the Pi 3's and Zero 2 W's (bcm2835 sdhost),
 * and ext4. MMC_BLOCK and the virtio core are built into Debian's kernel.
 */
export const RPI_FIRST_STAGE_MODULES = ['virtio_pci', 'virtio_blk', 'sdhci_iproc', 'bcm2835', 'ext4'];

export interface FirstStageOptions {
  label: string;
  /** How long to wait for the partition to appear (SD hosts probe asynchronously). */
  waitMs: number;
}

/**
 * The first stage's /init, a busybox sh script. Pure. Each failure is said on the console,
 * with what to do, then the board reboots after 10 s (as PID 1 does on a fatal error):
 * the initramfs has no shell to offer anyone.
 */
export function firstStageInit(o: FirstStageOptions): string {
  const tries = Math.max(1, Math.ceil(o.waitMs / 50));
  return `#!${BUSYBOX} sh
# kith's first stage (platform/rpi/first-stage.ts): mount the read-only root partition
# labelled ${o.label} and hand over to Node's init on it. Nothing else runs here.
b=${BUSYBOX}
say() { echo "kith-stage1 t=$($b cut -d' ' -f1 /proc/uptime)s $*"; }
fail() { say "FATAL $* action=reboot"; $b sleep 10; $b reboot -f; }
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t devtmpfs -o mode=0755 devtmpfs /dev
n=0
while read -r m; do
  $b insmod "$m" || say "module failed path=$m"
  n=$((n + 1))
done < ${FIRST_STAGE_MODULE_LIST}
say "modules loaded count=$n"
i=0
until dev=$($b findfs LABEL=${o.label} 2>/dev/null); do
  i=$((i + 1))
  [ "$i" -ge ${tries} ] && fail "reason=\\"no partition labelled ${o.label} within ${o.waitMs} ms: is the card written whole (kith flash)?\\""
  $b usleep 50000
done
$b mount -t ext4 -o ro,noatime "$dev" ${NEW_ROOT} || fail "reason=\\"cannot mount $dev (${o.label}) read-only\\""
say "root mounted device=$dev fstype=ext4 flags=ro,noatime"
for d in dev proc sys; do $b mount --move /$d ${NEW_ROOT}/$d || echo "kith-stage1 mount --move /$d failed"; done
exec $b switch_root ${NEW_ROOT} /init
`;
}
