#!/usr/bin/env bash
# Nested-rig recipe, run by scripts/images: build.sh OUT WORK
# The L1 VM of scripts/nested: Debian's own kernel ($PV_RIG_KERNEL_PACKAGE,
# fetched with `apt-get download` through the machine's apt configuration)
# and a busybox initramfs holding only the modules L1 needs (virtio-pci, 9p,
# overlayfs, loop, fuse, vsock, vhost-vsock, ext4, kvm and both vendors' kvm
# modules), uncompressed, with their load order worked out by kmod from the
# kernel's own modules.dep.
# Writes OUT/vmlinuz, OUT/initramfs.cpio.gz and OUT/kernel-release.
set -euo pipefail
out=$1 work=$2
package=${PV_RIG_KERNEL_PACKAGE:?PV_RIG_KERNEL_PACKAGE (the L1 kernel package) must be set}
recipe=$(cd "$(dirname "$0")" && pwd)
fail() { echo "rig: $*" >&2; exit 1; }
# What L1 loads; kvm_amd or kvm_intel is picked at boot by the CPU's flags.
# ext4: the jail sandbox mounts the guest's filesystem with L1's kernel;
# vhost_vsock: QEMU's vhost-vsock device, the peer of bench/boot's agent hello.
wanted=(virtio_pci 9pnet_virtio 9p overlay loop fuse vsock kvm ext4 vhost_vsock)
vendor=(kvm_amd kvm_intel)

busybox=$(command -v busybox) || fail "busybox not found; run scripts/install-deps (busybox-static)"
file -b "$busybox" | grep -q 'statically linked' || fail "$busybox is not static; install busybox-static"
mkdir -p "$out" "$work/deb" "$work/root"
(cd "$work/deb" && apt-get -o APT::Sandbox::User=root download "$package") ||
  fail "apt-get download $package failed"
dpkg-deb -x "$work"/deb/*.deb "$work/kernel"
release=$(ls "$work/kernel/lib/modules")
[[ $(wc -w <<<"$release") == 1 ]] || fail "expected one kernel release in $package, found: $release"
depmod -b "$work/kernel" "$release"

# `modprobe --show-depends` prints "insmod PATH" in load order, dependencies first.
load_order() {
  local m
  for m in "$@"; do
    modprobe -d "$work/kernel" -S "$release" --show-depends "$m" ||
      fail "module $m is missing from $package"
  done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++'
}
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,modules,host,exchange,overlay,newroot}
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0755 "$recipe/init" "$root/init"
: >"$root/modules/common"
while IFS= read -r path; do
  cp "$path" "$root/modules/"
  basename "$path" >>"$root/modules/common"
done < <(load_order "${wanted[@]}")
for m in "${vendor[@]}"; do
  # A vendor's modules not loaded already (kvm_amd also needs ccp), in order.
  : >"$root/modules/$m"
  while IFS= read -r path; do
    grep -qxF "$(basename "$path")" "$root/modules/common" && continue
    cp "$path" "$root/modules/"
    basename "$path" >>"$root/modules/$m"
  done < <(load_order "$m")
done
mknod -m 0600 "$root/dev/console" c 5 1 || fail "mknod dev/console failed (needs root)"

(cd "$root" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -n -6 \
  >"$out/initramfs.cpio.gz"
cp "$work/kernel/boot/vmlinuz-$release" "$out/vmlinuz"
echo "$release" >"$out/kernel-release"
echo "rig: $package ($release), $(wc -l <"$root/modules/common") common modules," \
  "initramfs $(stat -c %s "$out/initramfs.cpio.gz") bytes"
