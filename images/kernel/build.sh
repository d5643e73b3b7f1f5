#!/usr/bin/env bash
# Sandbox kernel recipe, run by scripts/images: build.sh OUT WORK
# Builds Debian's linux-source-6.1 with `make tinyconfig` + sandbox.config
# (merge_config.sh, olddefconfig), verifies that every fragment option holds in
# the final .config, and writes OUT/{vmlinux,bzImage,.config}.
set -euo pipefail
out=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/sandbox.config
src_tar=${PV_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
fail() { echo "kernel: $*" >&2; exit 1; }

[[ -r $src_tar ]] || fail "$src_tar not found; install linux-source-6.1 (scripts/install-deps)"
for tool in make gcc bc flex bison xz; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run scripts/install-deps"
done
mkdir -p "$work" "$out"

echo "kernel: extracting $src_tar"
tar -xf "$src_tar" -C "$work" || fail "extracting $src_tar failed"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -1)
[[ -n $src ]] || fail "no linux-source-* directory in $src_tar"
cd "$src"

# Reproducible-ish build identity (no host name or user in the banner).
export ARCH=x86_64 KBUILD_BUILD_USER=patchvisor KBUILD_BUILD_HOST=patchvisor
export KBUILD_BUILD_TIMESTAMP=${SOURCE_DATE_EPOCH:+@$SOURCE_DATE_EPOCH}
[[ -n $KBUILD_BUILD_TIMESTAMP ]] || unset KBUILD_BUILD_TIMESTAMP

echo "kernel: configuring (tinyconfig + $(basename "$fragment"))"
make -s tinyconfig || fail "make tinyconfig failed"
scripts/kconfig/merge_config.sh -m .config "$fragment" || fail "merge_config.sh failed"
make -s olddefconfig || fail "make olddefconfig failed"

# Every option of the fragment must hold in the final .config.
missing=()
while IFS= read -r line; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    grep -qxF -- "$line" .config || missing+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" .config || echo absent))")
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    ! grep -qE "^${BASH_REMATCH[1]}=" .config || missing+=("$line (got: $(grep -E "^${BASH_REMATCH[1]}=" .config))")
  fi
done <"$fragment"
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "kernel: these options of $fragment did not end up in the final .config:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "kernel: all options of $(basename "$fragment") hold in .config"

echo "kernel: make -j$(nproc) bzImage vmlinux"
make -j"$(nproc)" bzImage vmlinux || fail "make bzImage vmlinux failed"
cp vmlinux "$out/vmlinux"
cp arch/x86/boot/bzImage "$out/bzImage"
cp .config "$out/.config"
echo "kernel: $(stat -c %s "$out/bzImage") byte bzImage, $(stat -c %s "$out/vmlinux") byte vmlinux"
