#!/usr/bin/env bash
# The .deb on a clean Debian 12: cpack -G DEB makes the package from this
# build; a fresh copy of the cached debootstrap minbase tree (scripts/images
# debian) gets the machine's apt sources; apt-get installs the .deb there,
# resolving its dependencies from the archive; then, chrooted, the installed
# commands run: --version, --help, the image layer on a file, the VMM with
# the test guest on /dev/kvm; and apt-get remove takes it all away again.
# Every mount lives in a private mount namespace, so none outlives the test.
# Environment: PV_SOURCE_DIR, PV_BINARY_DIR, PV_VERSION (set by ctest).
set -euo pipefail
: "${PV_SOURCE_DIR:?}" "${PV_BINARY_DIR:?}" "${PV_VERSION:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; started_ms=$(( $(date +%s%N) / 1000000 )); }
elapsed() { echo "   ($(( $(date +%s%N) / 1000000 - started_ms )) ms)"; }
[[ $(id -u) == 0 ]] || { echo "SKIP: chroot and mounts need root"; exit 77; }
for tool in cpack dpkg-deb unshare chroot qemu-io; do
  command -v "$tool" >/dev/null || fail "$tool not found; run scripts/install-deps"
done
rootfs=$("$PV_SOURCE_DIR/scripts/images" --build-dir "$PV_BINARY_DIR" path debian-rootfs 2>/dev/null) ||
  fail "the clean Debian 12 tree is not built: run scripts/images --build-dir $PV_BINARY_DIR debian"
guest=$PV_BINARY_DIR/images/testguest/testguest.elf
[[ -f $guest ]] || fail "$guest is not built"
# /var/tmp: the tree is a few hundred MiB, more than a tmpfs /tmp may hold.
tmp=$(mktemp -d /var/tmp/pv-deb-test.XXXXXX)
trap 'rm -rf --one-file-system "$tmp"' EXIT

step "cpack -G DEB"
(cd "$tmp" && cpack -G DEB --config "$PV_BINARY_DIR/CPackConfig.cmake" -B "$tmp/cpack") \
  >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack failed"; }
elapsed
deb=$(echo "$tmp"/cpack/patchvisor_*.deb)
[[ -f $deb ]] || fail "cpack made no patchvisor_*.deb: $(ls "$tmp/cpack")"
[[ $(dpkg-deb -f "$deb" Version) == "$PV_VERSION" ]] || fail "version $(dpkg-deb -f "$deb" Version)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "   $(basename "$deb"), $(stat -c %s "$deb") bytes; Depends: $depends"
for library in libc6 libqcow1 libseccomp2 libfuse3-3; do
  grep -q "\\b$library\\b" <<<"$depends" || fail "Depends lacks $library (dpkg-shlibdeps)"
done
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for path in ./usr/bin/patchvisor ./usr/bin/patchvisor-vmm ./usr/lib/patchvisor/patchvisor-vmm \
    ./usr/lib/patchvisor/pv-agent ./usr/share/man/man1/patchvisor.1.gz \
    ./usr/share/bash-completion/completions/patchvisor ./usr/include/patchvisor/vmm.hpp \
    ./usr/lib/cmake/patchvisor/patchvisorConfig.cmake; do
  grep -qxF "$path" <<<"$contents" || fail "the package lacks $path"
done

step "a fresh clean Debian 12 from $rootfs"
root=$tmp/root
mkdir "$root"
tar --numeric-owner -xzf "$rootfs" -C "$root"
elapsed
grep -q '^VERSION_ID="12"' "$root/etc/os-release" || fail "not Debian 12"
[[ ! -e $root/usr/bin/patchvisor ]] || fail "the clean tree has patchvisor already"
# The machine's apt sources and proxy, so apt resolves from the same archive.
rm -f "$root/etc/apt/sources.list"
[[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$root/etc/apt/"
cp -r /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/" 2>/dev/null || true
proxy=$(apt-config dump Acquire::http::Proxy | awk -F'"' '/Proxy/ { print $2 }')
[[ -z $proxy ]] || echo "Acquire::http::Proxy \"$proxy\";" >"$root/etc/apt/apt.conf.d/01proxy"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$root/tmp/patchvisor.deb"
cp "$guest" "$root/tmp/testguest.elf"

# Runs in the chroot, in a private mount namespace with /proc, /sys and /dev.
in_chroot() {
  unshare --mount --propagation private -- bash -c '
    root=$1; shift
    mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
      mount --rbind /dev "$root/dev" || exit 125
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"' _ "$root" "$@"
}

step "apt-get update && apt-get install ./patchvisor.deb (in the chroot)"
in_chroot apt-get update -q >"$tmp/apt.log" 2>&1 || { tail -20 "$tmp/apt.log"; fail "apt-get update"; }
in_chroot apt-get install -y -q --no-install-recommends /tmp/patchvisor.deb >>"$tmp/apt.log" 2>&1 ||
  { tail -30 "$tmp/apt.log"; fail "apt-get install of the .deb"; }
elapsed
grep -E '^(Setting up|Unpacking) ' "$tmp/apt.log" | awk '{ print "   " $1, $2, $3 }' | sort -u | head -40
[[ $(in_chroot dpkg-query -W -f='${db:Status-Abbrev}' patchvisor) == ii* ]] || fail "patchvisor is not installed"

step "patchvisor --version, --help (in the chroot)"
version=$(in_chroot patchvisor --version)
echo "   $version"
[[ $version == "patchvisor $PV_VERSION" ]] || fail "patchvisor --version says '$version'"
in_chroot patchvisor --help >"$tmp/help" || fail "patchvisor --help exited $?"
grep -q '^Subcommands:' "$tmp/help" || fail "patchvisor --help: $(cat "$tmp/help")"
grep -q -- '--kernel' <<<"$(in_chroot patchvisor-vmm --help)" || fail "patchvisor-vmm --help"
in_chroot bash -c 'ls /usr/share/man/man1/patchvisor.1.gz /usr/share/man/man1/patchvisor-vmm.1.gz' \
  >/dev/null || fail "no man pages"

step "the image layer on a file (in the chroot)"
in_chroot bash -c 'set -e; truncate -s 8M /tmp/disk.raw
  patchvisor img overlay /tmp/disk.raw /tmp/overlay.qcow2
  patchvisor img write /tmp/overlay.qcow2 --offset 1M --length 64K --pattern 0x5a
  patchvisor img commit /tmp/overlay.qcow2 --output /tmp/merged.raw' | sed 's/^/   | /' ||
  fail "patchvisor img"
reads=$(qemu-io -f raw -r -c 'read -P 0x5a 1M 64k' -c 'read -P 0 0 1M' "$root/tmp/merged.raw")
! grep -q 'Pattern verification failed' <<<"$reads" || fail "merged.raw: $reads"

if [[ -e /dev/kvm ]]; then
  step "patchvisor-vmm with the test guest (in the chroot, /dev/kvm)"
  in_chroot patchvisor-vmm --kernel /tmp/testguest.elf --serial-log /tmp/serial.log --timeout-s 60 \
    --json >"$tmp/vmm.json" || fail "patchvisor-vmm exited $?: $(cat "$root/tmp/serial.log")"
  elapsed
  grep -qxF "testguest: all tests passed, resetting" "$root/tmp/serial.log" ||
    fail "the test guest did not pass: $(cat "$root/tmp/serial.log")"
  grep -q '"exit_reason":"reset"' "$tmp/vmm.json" || fail "$(cat "$tmp/vmm.json")"
else
  echo "   (no /dev/kvm here: the VMM is not run)"
fi

step "apt-get remove patchvisor (in the chroot)"
in_chroot apt-get remove -y -q patchvisor >>"$tmp/apt.log" 2>&1 || fail "apt-get remove"
for path in /usr/bin/patchvisor /usr/lib/patchvisor/pv-agent /usr/lib/libpatchvisor-vmm.so.0; do
  [[ ! -e $root$path ]] || fail "$path is left after apt-get remove"
done
echo "PASS"
