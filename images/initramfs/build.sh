#!/usr/bin/env bash
# Agent initramfs recipe, run by scripts/images: build.sh OUT WORK
# Packs $PV_AGENT (pv-agent, stripped) as /init with the directories it mounts on into a
# reproducible gzip'ed newc cpio: sorted entries, owner root, every mtime
# clamped to SOURCE_DATE_EPOCH (default 0), inode numbers renumbered
# (cpio --reproducible), gzip -n (no name or time stamp).
# Writes OUT/initramfs.cpio.gz and OUT/initramfs.sha256.
set -euo pipefail
out=$1 work=$2
agent=${PV_AGENT:?PV_AGENT (path of pv-agent) must be set}
epoch=${SOURCE_DATE_EPOCH:-0}
fail() { echo "initramfs: $*" >&2; exit 1; }

[[ -f $agent ]] || fail "$agent not found: build pv-agent first (cmake --build BUILD --target pv-agent)"
command -v cpio >/dev/null || fail "cpio not found; run scripts/install-deps"
if file_out=$(file -b "$agent" 2>/dev/null); then
  [[ $file_out == *"statically linked"* || $file_out == *"static-pie"* ]] ||
    echo "initramfs: warning: $agent does not look static ($file_out)" >&2
fi
mkdir -p "$out" "$work/root"
root=$work/root
cd "$root"
umask 022
install -m 0755 "$agent" init
# Debug info stays in the build tree; the initramfs gets a stripped copy.
if command -v strip >/dev/null; then strip --strip-all init || fail "strip $agent failed"; fi
mkdir -m 0755 dev proc sys mnt run tmp
chmod 1777 tmp
# The kernel opens /dev/console for init's stdio before the agent mounts devtmpfs.
mknod -m 0600 dev/console c 5 1 || fail "mknod dev/console failed (needs root)"
mknod -m 0666 dev/null c 1 3 || fail "mknod dev/null failed (needs root)"

find . -exec touch -h -d "@$epoch" {} +
find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet >"$work/initramfs.cpio" ||
  fail "cpio failed"
gzip -n -9 <"$work/initramfs.cpio" >"$out/initramfs.cpio.gz"
(cd "$out" && sha256sum initramfs.cpio.gz >initramfs.sha256)
echo "initramfs: $(stat -c %s "$out/initramfs.cpio.gz") bytes, sha256 $(cut -d' ' -f1 "$out/initramfs.sha256")"
