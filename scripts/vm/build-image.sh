#!/usr/bin/env bash
# Builds the podrun test guest into OUT_DIR (called by scripts/vm-test; runnable on its own, as root):
#   OUT_DIR/vmlinuz      kernel of KERNEL_PKG (apt-get download + dpkg-deb -x, nothing installed)
#   OUT_DIR/initrd.gz    busybox-static + virtio_pci, virtio_blk, ext4 (+ deps), /init = initramfs-init
#   OUT_DIR/root.img     ext4: debootstrap --variant=minbase bookworm + scripts/provision.sh
#                        --guest-image (the packages the tests use), /lib/modules with depmod run,
#                        the host's node binary, /etc/hosts, /sbin/podrun-vm-init
#   OUT_DIR/inputs.txt   what it was built from
#
#   scripts/vm/build-image.sh OUT_DIR KERNEL_PKG PACKAGES_FILE "EXCLUDED PACKAGES"
# Works in OUT_DIR.partial-<pid> and renames it to OUT_DIR when complete; removes what it made,
# including the mounts debootstrap makes inside its target, on any failure. The debootstrap result
# is reused from OUT_DIR/../base/ (one tar per suite, mirror and month).
set -euo pipefail

out=${1:?usage: build-image.sh OUT_DIR KERNEL_PKG PACKAGES_FILE EXCLUDE}
kernel_pkg=${2:?kernel package, e.g. linux-image-6.1.0-57-amd64}
packages_file=${3:?package list file}
exclude=${4:-}
mirror=${PODRUN_VM_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
here=$(cd "$(dirname "$0")" && pwd)

t0=$(date +%s)
work=$out.partial-$$
rootfs=$work/rootfs
say() { echo "build-image: [$(( $(date +%s) - t0 )) s] $*" >&2; }

unmount_under() {
  # Mounts under our own rootfs only (debootstrap mounts proc/sys there), deepest first.
  local m
  [ -d "$rootfs" ] || return 0
  for m in $(awk -v r="$(realpath "$rootfs")" '$5 == r || index($5, r "/") == 1 { print $5 }' \
      /proc/self/mountinfo | sort -r); do
    umount -l "$m" || say "warning: Cannot unmount \"$m\""
  done
}
cleanup() {
  unmount_under
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

mkdir -p "$work"

say "kernel: apt-get download $kernel_pkg"
(cd "$work" && apt-get download -q "$kernel_pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
deb=$(ls "$work"/"$kernel_pkg"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { say "Cannot download kernel package \"$kernel_pkg\" (run apt-get update?)"; exit 1; }
dpkg-deb -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
rm -f "$deb"

# The debootstrap stage is most of the build and does not depend on the package list: its result
# is kept as a tar beside the images (keyed on suite, mirror and month) and reused by rebuilds.
base_dir=$(dirname "$out")/base
base_tar=$base_dir/$suite-minbase-$(echo "$mirror" | sha256sum | cut -c1-8)-$(date -u +%Y%m)-v1.tar
if [ -f "$base_tar" ]; then
  say "rootfs: minbase $suite from $base_tar"
  mkdir -p "$rootfs"
  tar -xpf "$base_tar" -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*'
else
  say "rootfs: debootstrap --variant=minbase $suite ($mirror)"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    say "Cannot debootstrap \"$suite\" from \"$mirror\" (log above)"; exit 1; }
  unmount_under
  mkdir -p "$base_dir"
  rm -f "$base_dir"/*.tar "$base_dir"/*.tar.partial-*
  tar -cpf "$base_tar.partial-$$" -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' .
  mv "$base_tar.partial-$$" "$base_tar"
fi
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
[ -s "$rootfs/etc/resolv.conf" ] || cp /etc/resolv.conf "$rootfs/etc/resolv.conf"

say "rootfs: scripts/provision.sh --guest-image (excluding: $exclude)"
mkdir -p "$rootfs/tmp/provision"
cp "$here/../provision.sh" "$rootfs/tmp/provision/provision.sh"
cp "$packages_file" "$rootfs/tmp/provision/packages.txt"
chroot "$rootfs" /bin/bash /tmp/provision/provision.sh --guest-image \
  --packages-file /tmp/provision/packages.txt --exclude "$exclude" >&2
rm -rf "$rootfs/tmp/provision"
unmount_under

say "rootfs: modules of $kver, depmod"
mkdir -p "$rootfs/lib/modules"
cp -a "$work/kernel/lib/modules/$kver" "$rootfs/lib/modules/"
chroot "$rootfs" /sbin/depmod -a "$kver"

say "rootfs: node $(node --version), /etc/hosts, /sbin/podrun-vm-init"
install -m 755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
printf '127.0.0.1\tlocalhost podrun-vm\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$rootfs/etc/hosts"
echo podrun-vm > "$rootfs/etc/hostname"
: > "$rootfs/etc/resolv.conf"
install -m 755 "$here/vm-init" "$rootfs/sbin/podrun-vm-init"
chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' || { say "Cannot run node inside the rootfs"; exit 1; }

say "root.img: mkfs.ext4 -d"
used_mb=$(du -sm "$rootfs" | cut -f1)
truncate -s "$(( used_mb + ${PODRUN_VM_FREE_MB:-6144} ))M" "$work/root.img"
mkfs.ext4 -q -F -L podrun-root -d "$rootfs" "$work/root.img"

say "initrd.gz: busybox-static + virtio_pci virtio_blk ext4"
ir=$work/initramfs
mkdir -p "$ir/bin" "$ir/lib/modules/$kver"
cp /bin/busybox "$ir/bin/busybox"
install -m 755 "$here/initramfs-init" "$ir/init"
for m in drivers/virtio drivers/block/virtio_blk.ko fs/ext4 fs/jbd2 fs/mbcache.ko lib/crc16.ko \
    crypto/crc32c_generic.ko; do
  mkdir -p "$ir/lib/modules/$kver/kernel/$(dirname "$m")"
  cp -a "$work/kernel/lib/modules/$kver/kernel/$m" "$ir/lib/modules/$kver/kernel/$m"
done
busybox depmod -b "$ir" "$kver"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

{
  echo "kernel_package=$kernel_pkg"
  echo "kernel_release=$kver"
  echo "node=$(node --version)"
  echo "mirror=$mirror"
  echo "excluded=$exclude"
  echo "rootfs_mb=$used_mb"
  echo "build_seconds=$(( $(date +%s) - t0 ))"
  echo "built=$(date -u +%FT%TZ)"
} > "$work/inputs.txt"

unmount_under
rm -rf --one-file-system "$rootfs" "$ir" "$work/kernel" "$work/debootstrap.log"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
say "done in $(( $(date +%s) - t0 )) s: $out"
