#!/usr/bin/env bash
# Sample disk images recipe, run by scripts/images: build.sh OUT WORK
# A Debian bookworm minbase guest from debootstrap (bookworm main only, so
# libssl3 and openssl are at the release version, older than
# bookworm-security's), installed like a real system (os-release, dpkg status,
# fstab, hostname), apt caches removed. Writes to OUT:
#   sample.raw      ext4 on the whole disk, 1 GiB, sparse (mke2fs -d, no mounts)
#   sample.qcow2    qemu-img convert -O qcow2 of sample.raw
#   sample-gpt.raw  GPT, one Linux partition (1 MiB .. 1 GiB + 1 MiB) holding
#                   a byte copy of sample.raw's ext4
#   versions.json   suite, architecture, installed libssl3/openssl versions
# The mirror is the one the machine's apt configuration uses for bookworm main
# (from `apt-cache policy`); no archive host name is written in the repository.
# The awk filters read their whole input: an early exit would kill apt-cache
# with SIGPIPE, which pipefail turns into a failure.
set -euo pipefail
out=$1 work=$2
suite=bookworm
packages=(libssl3 openssl)
size_mib=1024
fail() { echo "samples: $*" >&2; exit 1; }

for tool in debootstrap mke2fs qemu-img sgdisk apt-cache dpkg-query; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run scripts/install-deps"
done
[[ $(id -u) -eq 0 ]] || fail "debootstrap needs root"
arch=$(dpkg --print-architecture)

# The archive URL apt uses for "$suite/main" (e.g. "<url> bookworm/main amd64 Packages").
mirror=$(apt-cache policy | awk -v s="$suite/main" '$1 ~ /^[0-9]+$/ && $3 == s && !found { print $2; found = 1 }')
[[ -n $mirror ]] || fail "no '$suite/main' source in the apt configuration (apt-cache policy); add one and run apt-get update"
# The release version apt knows for each package in "$suite/main".
declare -A release=()
for p in "${packages[@]}"; do
  release[$p]=$(apt-cache madison "$p" | awk -F' [|] ' -v s=" $suite/main " '$3 ~ s && !found { print $2; found = 1 }')
  [[ -n ${release[$p]} ]] || fail "apt-cache madison $p shows no $suite/main version (apt-get update?)"
  echo "samples: $p release version in $suite/main: ${release[$p]}"
done
# debootstrap downloads with wget: pass on apt's proxy, if any.
if [[ -z ${http_proxy:-} ]]; then
  eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
  [[ -z ${http_proxy:-} ]] || export http_proxy
fi

tree=$work/tree
debs=${PV_CACHE_DIR:?}/debootstrap-debs
mkdir -p "$tree" "$debs" "$out"
include=$(IFS=,; echo "${packages[*]}")
echo "samples: debootstrap --variant=minbase --include=$include $suite (mirror from apt configuration)"
debootstrap --variant=minbase --arch="$arch" --include="$include" --cache-dir="$debs" \
  "$suite" "$tree" "$mirror" || {
  tail -n 20 "$tree/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  fail "debootstrap failed"
}
# debootstrap unmounts what it mounted; make sure, before anything is removed.
while read -r mnt; do umount -l "$mnt" || true; done < <(awk -v t="$tree/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r)

# Look like an installed system.
[[ -f $tree/etc/os-release || -L $tree/etc/os-release ]] || fail "no /etc/os-release in the debootstrap tree"
[[ -s $tree/var/lib/dpkg/status ]] || fail "no /var/lib/dpkg/status in the debootstrap tree"
uuid=$(cat /proc/sys/kernel/random/uuid)
echo "pv-sample" >"$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpv-sample\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$tree/etc/hosts"
printf '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$tree/etc/fstab"
# Keep apt caches and downloaded lists out of the image.
rm -f "$tree"/var/cache/apt/archives/*.deb "$tree"/var/cache/apt/*.bin
rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/archives/partial/*
mkdir -p "$tree/var/lib/apt/lists/partial"

# Record the installed versions; they must be the release versions.
{
  printf '{\n  "suite": "%s",\n  "architecture": "%s",\n  "packages": {\n' "$suite" "$arch"
  n=0
  for p in "${packages[@]}"; do
    v=$(dpkg-query --admindir="$tree/var/lib/dpkg" -W -f='${Version}' "$p") || fail "$p is not installed in the tree"
    [[ $v == "${release[$p]}" ]] ||
      echo "samples: warning: $p installed at $v, apt's $suite/main says ${release[$p]} (stale apt lists?)" >&2
    n=$((n + 1))
    printf '    "%s": "%s"%s\n' "$p" "$v" "$([[ $n -lt ${#packages[@]} ]] && echo ,)"
  done
  printf '  }\n}\n'
} >"$out/versions.json"
cat "$out/versions.json"

echo "samples: sample.raw (ext4, ${size_mib} MiB, mke2fs -d)"
truncate -s "${size_mib}M" "$out/sample.raw"
mke2fs -q -F -t ext4 -L pv-sample -U "$uuid" -d "$tree" "$out/sample.raw" || fail "mke2fs -d failed"
e2fsck -fn "$out/sample.raw" >/dev/null || fail "e2fsck of sample.raw failed"

echo "samples: sample.qcow2"
qemu-img convert -O qcow2 "$out/sample.raw" "$out/sample.qcow2" || fail "qemu-img convert failed"

echo "samples: sample-gpt.raw"
truncate -s "$((size_mib + 2))M" "$out/sample-gpt.raw"
sgdisk -o -n "1:2048:+${size_mib}M" -t 1:8300 -c 1:pv-sample-root "$out/sample-gpt.raw" >/dev/null ||
  fail "sgdisk failed"
dd if="$out/sample.raw" of="$out/sample-gpt.raw" bs=1M seek=1 conv=notrunc,sparse status=none || fail "dd into the partition failed"
sgdisk -v "$out/sample-gpt.raw" >/dev/null || fail "sgdisk -v sample-gpt.raw failed"
[[ $(sgdisk -p "$out/sample-gpt.raw" | grep -cE '^ +1 +2048 ') -eq 1 ]] || fail "sample-gpt.raw has no partition 1 at sector 2048"
cmp -n "$((size_mib << 20))" "$out/sample.raw" <(dd if="$out/sample-gpt.raw" bs=1M skip=1 count="$size_mib" status=none) ||
  fail "partition 1 of sample-gpt.raw differs from sample.raw"

echo "samples: tree $(du -sh "$tree" | cut -f1), sample.raw uses $(du -h "$out/sample.raw" | cut -f1)"
