#!/bin/sh
# isolab test host, stage 1: the initramfs's /init (busybox). Loads the
# modules the root needs, builds the root — the host's / read-only over 9p
# with a tmpfs on top — mounts what the command needs into it, and hands
# over to busybox init there. Any failure powers off; the host side then
# finds no status file and shows this console.
export PATH=/bin
fail() { echo "isolab-testhost: stage 1: $*"; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
  insmod "/modules/$m.ko" || fail "insmod $m"
done < /modules/order
p9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$p9,ro,cache=loose" hostroot /mnt/lower || fail "mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw
mkdir /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /root \
  || fail "mount the overlay root"
r=/root
for d in proc sys dev; do mount --move "/$d" "$r/$d" || fail "move /$d"; done
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mkdir -p "$r/dev/pts" "$r/dev/shm" "$r/run/isolab-testhost"
# What udev would add: bash's process substitution needs /dev/fd.
ln -s /proc/self/fd "$r/dev/fd"
for i in 0 1 2; do ln -s "/proc/self/fd/$i" "$r/dev/$(echo stdin stdout stderr | cut -d' ' -f$((i + 1)))"; done
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts "$r/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
# A pure cgroup v2 host with every controller, as most users' machines are.
mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup" || fail "mount cgroup2"
mount -t 9p -o "$p9,cache=none" run "$r/run/isolab-testhost" || fail "mount the run directory"
. "$r/run/isolab-testhost/config"
mkdir -p "$r$ISOLAB_TESTHOST_SHARE"
mount -t 9p -o "$p9,cache=none" share "$r$ISOLAB_TESTHOST_SHARE" || fail "mount $ISOLAB_TESTHOST_SHARE"
# busybox init reaps orphans (a shell as PID 1 would not) and runs stage 2.
echo "::sysinit:/bin/sh /run/isolab-testhost/stage2" > "$r/etc/inittab"
exec switch_root "$r" /bin/busybox init
