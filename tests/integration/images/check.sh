#!/usr/bin/env bash
# One check of the images built by scripts/images: check.sh NAME
# (see CMakeLists.txt). Environment: PV_SOURCE_DIR, PV_BINARY_DIR.
set -euo pipefail
src=${PV_SOURCE_DIR:?}
bin=${PV_BINARY_DIR:?}
fail() { echo "FAIL: $*" >&2; exit 1; }
# Path of a built artifact; a missing one fails the test with the command to run.
artifact() {
  "$src/scripts/images" --build-dir "$bin" path "$1" ||
    fail "$1 is not built (see above); build it with: scripts/images --build-dir $bin all"
}
# Version of a package in a dpkg status file on stdin.
status_version() {
  awk -v p="$1" '/^$/ { pkg = "" } /^Package: / { pkg = $2 } pkg == p && /^Version: / { print $2; exit }'
}
# Value of "NAME": "VALUE" in a JSON file written by the recipes (one per line).
recorded_version() {
  sed -n "s/^ *\"$1\": \"\\([^\"]*\\)\".*/\\1/p" "$2" | head -1
}

case ${1:-} in
  kernel_config)
    config=$(artifact kernel-config)
    fragment=$src/images/kernel/sandbox.config
    missing=0
    while IFS= read -r line; do
      if [[ $line =~ ^CONFIG_ ]]; then
        grep -qxF -- "$line" "$config" || { echo "missing from $config: $line" >&2; missing=1; }
      elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        ! grep -q "^${BASH_REMATCH[1]}=" "$config" || { echo "set in $config: ${BASH_REMATCH[1]}" >&2; missing=1; }
      fi
    done <"$fragment"
    [[ $missing -eq 0 ]] || fail "the kernel .config does not hold every option of $fragment"
    echo "every option of $fragment holds in $config" ;;
  kernel_bzimage)
    bz=$(artifact kernel-bzimage)
    magic=$(od -An -c -j $((0x202)) -N 4 "$bz" | tr -d ' ')
    [[ $magic == HdrS ]] || fail "$bz: expected 'HdrS' at 0x202, found '$magic'"
    echo "$bz: HdrS at 0x202" ;;
  kernel_vmlinux)
    vm=$(artifact kernel-vmlinux)
    ident=$(od -An -t x1 -N 5 "$vm" | tr -d ' ')
    machine=$(od -An -t x1 -j 18 -N 2 "$vm" | tr -d ' ')
    [[ $ident == 7f454c4602 ]] || fail "$vm: not a 64-bit ELF file (ident $ident)"
    [[ $machine == 3e00 ]] || fail "$vm: ELF machine is $machine, expected 3e00 (x86-64)"
    echo "$vm: ELF64 x86-64" ;;
  initramfs_init)
    initrd=$(artifact initramfs)
    list=$(gzip -dc "$initrd" | cpio -t --quiet) || fail "$initrd: not a gzip'ed cpio archive"
    grep -qx init <<<"$list" || fail "$initrd does not contain init; it has: $(echo $list)"
    echo "$initrd contains init" ;;
  sample_dpkg_status)
    raw=$(artifact sample-raw)
    versions=$(artifact sample-versions)
    read_back=$("$src/tests/support/image-packages" "$raw" libssl3 openssl) || fail "cannot read $raw"
    for p in libssl3 openssl; do
      want=$(recorded_version "$p" "$versions")
      [[ -n $want ]] || fail "$versions records no version of $p"
      got=$(awk -v p="$p" '$1 == p { print $2 }' <<<"$read_back")
      [[ $got == "$want" ]] || fail "$raw: $p is at '${got:-not installed}', $versions says '$want'"
      echo "$raw: $p $got"
    done ;;
  sample_qcow2_check)
    qcow2=$(artifact sample-qcow2)
    qemu-img check "$qcow2" || fail "qemu-img check $qcow2 is not clean" ;;
  sample_gpt_partition)
    gpt=$(artifact sample-gpt)
    table=$(sgdisk -p "$gpt") || fail "sgdisk -p $gpt failed"
    echo "$table"
    parts=$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ ' <<<"$table" || true)
    [[ $parts -eq 1 ]] || fail "$gpt: expected one partition, sgdisk shows $parts"
    start=$(awk '/^ +1 / { print $2 }' <<<"$table")
    magic=$(od -An -t x1 -j $((start * 512 + 1024 + 0x38)) -N 2 "$gpt" | tr -d ' ')
    [[ $magic == 53ef ]] || fail "$gpt: partition 1 does not hold an ext2/3/4 superblock (magic $magic)" ;;
  catalog_newer)
    # What the package files say of themselves (dpkg-deb -f), against the
    # sample image itself (image-packages) and the manifest's advisory.
    catalog=$(artifact catalog)
    raw=$(artifact sample-raw)
    [[ -f $catalog/manifest.json ]] || fail "$catalog/manifest.json is missing"
    count=0
    for deb in "$catalog"/*.deb; do
      [[ -f $deb ]] || fail "$catalog holds no .deb"
      read -r p fixed < <(dpkg-deb -f "$deb" Package Version | cut -d' ' -f2 | paste -sd' ')
      [[ -n $p && -n $fixed ]] || fail "dpkg-deb cannot read the control fields of $deb"
      sample=$("$src/tests/support/image-packages" "$raw" "$p" | cut -d' ' -f2) || fail "cannot read $raw"
      [[ $sample != - ]] || fail "$p is not installed in $raw"
      dpkg --compare-versions "$fixed" gt "$sample" || fail "$p: catalog version $fixed is not newer than the sample's $sample"
      grep -qF "{\"name\": \"$p\", \"fixed_version\": \"$fixed\"}" "$catalog/manifest.json" ||
        fail "$catalog/manifest.json names no advisory fixing $p in $fixed"
      echo "$p: catalog $fixed > sample $sample"
      count=$((count + 1))
    done
    [[ $count -eq 2 ]] || fail "$catalog holds $count .deb files, expected libssl3 and openssl" ;;
  *) fail "unknown check '${1:-}'" ;;
esac
