#!/usr/bin/env bash
# Prints the path of a real bzImage for the boot-protocol unit tests: the
# vmlinuz of Debian's linux-image-cloud-amd64, fetched once with
# `apt-get download` (Debian's own client and configured mirror) and cached
# under ${PV_CACHE_DIR:-$HOME/.cache/patchvisor}/debian-cloud-kernel/<version>/.
# Exits non-zero (with a message on stderr) when apt cannot fetch it.
set -euo pipefail
cache_root=${PV_CACHE_DIR:-$HOME/.cache/patchvisor}/debian-cloud-kernel
# apt-cache takes seconds; a cached kernel is reused unless PV_REFRESH_KERNEL=1.
if [[ ${PV_REFRESH_KERNEL:-0} != 1 ]]; then
  cached=$(ls -1d "$cache_root"/*/vmlinuz 2>/dev/null | sort -V | tail -n1 || true)
  [[ -n $cached ]] && { echo "$cached"; exit 0; }
fi
package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '/Depends: linux-image-/ {print $2; exit}')
if [[ -z $package ]]; then
  # No package lists: fall back to whatever was cached before.
  cached=$(ls -1d "$cache_root"/*/vmlinuz 2>/dev/null | sort -V | tail -n1 || true)
  [[ -n $cached ]] && { echo "$cached"; exit 0; }
  echo "debian-bzimage: linux-image-cloud-amd64 not known to apt" >&2
  exit 1
fi
version=$(apt-cache policy "$package" | awk '/Candidate:/ {print $2}')
target=$cache_root/$package-$version
if [[ ! -f $target/vmlinuz ]]; then
  work=$(mktemp -d "${cache_root%/*}/.debian-kernel.XXXXXX" 2>/dev/null ||
    { mkdir -p "$cache_root"; mktemp -d "${cache_root%/*}/.debian-kernel.XXXXXX"; })
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get -o APT::Sandbox::User=root download "$package" >/dev/null)
  dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
  mkdir -p "$target"
  mv "$work"/boot/vmlinuz-* "$target/vmlinuz.tmp"
  mv "$target/vmlinuz.tmp" "$target/vmlinuz"
fi
echo "$target/vmlinuz"
