#!/usr/bin/env bash
# cmake --install into a fresh prefix, then use it the way a user and an
# embedder would: the commands, their man pages and completion, the
# exported symbols, and examples/embed-vmm configured with
# find_package(patchvisor) against that prefix alone, built, and run on
# /dev/kvm with the test guest (its results judged by qemu-img and qemu-io).
# Environment: PV_SOURCE_DIR, PV_BINARY_DIR, PV_VERSION (set by ctest).
set -euo pipefail
: "${PV_SOURCE_DIR:?}" "${PV_BINARY_DIR:?}" "${PV_VERSION:?}"
tmp=$(mktemp -d /tmp/pv-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
elapsed() { echo "   ($(( $(date +%s%N) / 1000000 - started_ms )) ms)"; }

step "cmake --install $PV_BINARY_DIR --prefix $prefix"
started_ms=$(( $(date +%s%N) / 1000000 ))
cmake --install "$PV_BINARY_DIR" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
elapsed
for file in bin/patchvisor lib/patchvisor/patchvisor-vmm lib/patchvisor/pv-agent \
    lib/libpatchvisor-imgfmt.so.0 lib/libpatchvisor-vmm.so.0 lib/libpatchvisor-vmm.so \
    include/patchvisor/error.hpp include/patchvisor/image.hpp include/patchvisor/vmm.hpp \
    lib/cmake/patchvisor/patchvisorConfig.cmake lib/cmake/patchvisor/patchvisorTargets.cmake \
    share/man/man1/patchvisor.1.gz share/man/man1/patchvisor-vmm.1.gz \
    share/bash-completion/completions/patchvisor share/bash-completion/completions/patchvisor-vmm; do
  [[ -e $prefix/$file ]] || fail "$file is not installed"
done
[[ $(readlink "$prefix/bin/patchvisor-vmm") == ../lib/patchvisor/patchvisor-vmm ]] ||
  fail "bin/patchvisor-vmm is not a relative link to lib/patchvisor/patchvisor-vmm"
stray=$(find "$prefix/include" -type f ! -path '*/include/patchvisor/*')
[[ -z $stray ]] || fail "headers outside include/patchvisor: $stray"

step "the installed commands"
version=$("$prefix/bin/patchvisor" --version)
[[ $version == "patchvisor $PV_VERSION" ]] || fail "patchvisor --version says '$version'"
# (grep -q reads from a here-string: on a pipe its early exit would
# SIGPIPE the writer, which pipefail turns into a failure.)
grep -q -- '--kernel' <<<"$("$prefix/bin/patchvisor-vmm" --help)" || fail "patchvisor-vmm --help"
grep -q 'statically linked' <<<"$(file "$prefix/lib/patchvisor/pv-agent")" ||
  fail "pv-agent is not static"

step "man pages: one per command and subcommand of --help"
subcommands() { "$@" --help | awk '/^[A-Za-z][A-Za-z ]*:$/ { s = $0; next } s == "Subcommands:" && /^  [a-z]/ { print $1 }'; }
pages=0
check_page() {  # check_page PAGE COMMAND...
  local name=$1 page=$prefix/share/man/man1/$1.1.gz sub option
  shift
  [[ -f $page ]] || fail "no man page $name for '$*'"
  local text
  text=$(zcat "$page")
  grep -q '^\.SH SYNOPSIS' <<<"$text" || fail "$page has no SYNOPSIS"
  # Every option of --help is in the page (help2man writes - as \-).
  while read -r option; do
    grep -qF -- "${option//-/\\-}" <<<"$text" || fail "$page lacks $option"
  done < <("$@" --help | awk '/^  --[a-z]/ { split($1, n, ","); print n[1] }')
  pages=$((pages + 1))
  while IFS= read -r sub; do check_page "$name-$sub" "$@" "$sub"; done < <(subcommands "$@")
}
check_page patchvisor "$prefix/bin/patchvisor"
check_page patchvisor-vmm "$prefix/bin/patchvisor-vmm"
echo "   $pages pages checked"

step "bash completion"
completion=$(PATH=$prefix/bin:$PATH bash -c '
  source "$1"
  complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _patchvisor; echo "${COMPREPLY[*]}"; }
  complete_words patchvisor ""
  complete_words patchvisor img ""
  complete_words patchvisor patch --sandbox ""
  complete_words patchvisor-vmm --vsock-c' _ "$prefix/share/bash-completion/completions/patchvisor")
expected_completion="$(subcommands "$prefix/bin/patchvisor" | tr '\n' ' ' | sed 's/ $//')
info overlay write commit compare
auto jail microvm
--vsock-cid"
[[ $completion == "$expected_completion" ]] ||
  fail "completion gave:"$'\n'"$completion"$'\n'"expected:"$'\n'"$expected_completion"

step "the shared libraries export patchvisor::* only"
for library in "$prefix"/lib/libpatchvisor-*.so.0; do
  stray=$(nm -D --defined-only -P "$library" | awk '{ print $1 }' | c++filt | grep -v '^patchvisor::' || true)
  [[ -z $stray ]] || fail "$library exports more than the API:"$'\n'"$stray"
  echo "   $(basename "$library"): $(nm -D --defined-only "$library" | wc -l) symbols"
done

step "examples/embed-vmm against the prefix (find_package(patchvisor))"
started_ms=$(( $(date +%s%N) / 1000000 ))
cmake -S "$PV_SOURCE_DIR/examples/embed-vmm" -B "$tmp/example" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configuring the example failed"; }
cmake --build "$tmp/example" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building the example failed"; }
elapsed
grep -qF "$prefix/lib/libpatchvisor-vmm.so.0" <<<"$(ldd "$tmp/example/embed-vmm")" ||
  fail "embed-vmm does not use the installed library: $(ldd "$tmp/example/embed-vmm")"

if [[ ! -e /dev/kvm ]]; then
  echo "SKIP: /dev/kvm is absent; the example was built but cannot run here"
  exit 77
fi
guest=$PV_BINARY_DIR/images/testguest/testguest.elf
[[ -f $guest ]] || fail "$guest is not built (cmake --build $PV_BINARY_DIR --target testguest)"
for mode in event-loop blocking; do
  step "embed-vmm, $mode"
  work=$tmp/work-$mode
  mkdir "$work"
  flag=()
  [[ $mode == blocking ]] && flag=(--blocking)
  started_ms=$(( $(date +%s%N) / 1000000 ))
  status=0
  "$tmp/example/embed-vmm" "$guest" "$work" "${flag[@]}" >"$work/out" 2>&1 || status=$?
  elapsed
  sed 's/^/   | /' "$work/out"
  [[ $status == 0 ]] || fail "embed-vmm exited $status"
  for line in "guest: ok virtio-blk base sector=4096 bytes=4096 pattern=0x11" \
      "guest: testguest: virtio-blk done, resetting" "sector 0 after the run: 0x5a (the guest's write)"; do
    grep -qxF "$line" "$work/out" || fail "embed-vmm did not print '$line'"
  done
  grep -q '^vm ended: reset ' "$work/out" || fail "the VM did not end by a reset"
  if [[ $mode == event-loop ]]; then
    grep -q '^vm started on its own thread; polling exit_fd' "$work/out" || fail "not run from the poll loop"
  fi
  # QEMU's tools judge the files the API wrote.
  qemu-img check -q "$work/overlay.qcow2" || fail "qemu-img check overlay.qcow2"
  qemu-img compare -q "$work/overlay.qcow2" "$work/merged.raw" || fail "merged.raw differs from the overlay"
  reads=$(qemu-io -f raw -r -c 'read -P 0x5a 0 4k' -c 'read -P 0xa5 1049088 64k' \
    -c 'read -P 0x3c 8384512 4k' -c 'read -P 0x11 2M 4k' "$work/merged.raw")
  ! grep -q 'Pattern verification failed' <<<"$reads" || fail "merged.raw: $reads"
  cmp -s -n $((8 << 20)) "$work/base.raw" /dev/zero || fail "base.raw was written"
done
echo "PASS"
