#!/usr/bin/env bash
# Clean Debian 12 recipe, run by scripts/images: build.sh OUT WORK
# A bookworm minbase tree from debootstrap: the "clean Debian 12 machine"
# on which tests/integration/deb installs patchvisor's .deb with apt. Packed
# as OUT/rootfs.tar.gz (numeric owners, modes and device nodes kept), so the
# cache holds one file and every test unpacks a fresh copy. No apt lists
# are kept: they go stale, so each test fetches its own. The mirror is the
# one the machine's apt configuration uses for bookworm main (as in
# images/samples); no archive host name is written in the repository.
# Writes OUT/rootfs.tar.gz and OUT/release ("bookworm amd64").
set -euo pipefail
out=$1 work=$2
suite=bookworm
fail() { echo "debian: $*" >&2; exit 1; }

for tool in debootstrap apt-cache tar gzip; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run scripts/install-deps"
done
[[ $(id -u) -eq 0 ]] || fail "debootstrap needs root"
arch=$(dpkg --print-architecture)
# The awk filter reads its whole input: an early exit would kill apt-cache
# with SIGPIPE, which pipefail turns into a failure.
mirror=$(apt-cache policy | awk -v s="$suite/main" '$1 ~ /^[0-9]+$/ && $3 == s && !found { print $2; found = 1 }')
[[ -n $mirror ]] || fail "no '$suite/main' source in the apt configuration (apt-cache policy); add one and run apt-get update"
# debootstrap downloads with wget: pass on apt's proxy, if any.
if [[ -z ${http_proxy:-} ]]; then
  eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
  [[ -z ${http_proxy:-} ]] || export http_proxy
fi

tree=$work/tree
debs=${PV_CACHE_DIR:?}/debootstrap-debs
mkdir -p "$tree" "$debs" "$out"
echo "debian: debootstrap --variant=minbase $suite (mirror from apt configuration)"
debootstrap --variant=minbase --arch="$arch" --cache-dir="$debs" "$suite" "$tree" "$mirror" || {
  tail -n 20 "$tree/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  fail "debootstrap failed"
}
# debootstrap unmounts what it mounted; make sure, before anything is packed.
while read -r mnt; do umount -l "$mnt" || true; done < <(awk -v t="$tree/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r)
[[ -x $tree/usr/bin/apt-get && -x $tree/usr/bin/dpkg ]] || fail "no apt-get/dpkg in the debootstrap tree"
grep -q '^VERSION_ID="12"' "$tree/etc/os-release" || fail "the tree is not Debian 12: $(cat "$tree/etc/os-release")"
rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/archives/*.deb "$tree"/debootstrap
tar --numeric-owner --sort=name -C "$tree" -cf - . | gzip -n -6 >"$out/rootfs.tar.gz"
echo "$suite $arch" >"$out/release"
echo "debian: $(du -sh "$tree" | cut -f1) tree, rootfs.tar.gz $(stat -c %s "$out/rootfs.tar.gz") bytes"
