#!/usr/bin/env bash
# Checks of scripts/nested itself, one L1 boot each, with tools we did not
# write (grep, cmp):
#   passthrough  COMMAND's stdout and stderr come back apart and whole, its
#                exit status is the rig's, it runs in the caller's directory
#                with the caller's environment, inside L1 (/dev/kvm, PV_NESTED)
#   no-kvm       an emulated CPU without SVM or VMX (Nehalem; TCG emulates no
#                VMX): the rig fails loudly (125, the
#                reason), it never runs the command as if all were well
#   timeout      a command that never ends: 124 within the timeout and a bit,
#                and no QEMU of the run left behind
set -uo pipefail
nested=${PV_SOURCE_DIR:?}/scripts/nested
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pv-rig-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

case $1 in
  passthrough)
    # 200 000 numbered lines make a short read or a lost tail visible.
    export PV_RIG_PROBE="a value with spaces and 'quotes'"
    "$nested" -- bash -c 'seq 1 200000; echo "on stderr" >&2; pwd >&2;
      printf "%s\n" "$PV_RIG_PROBE" "$PV_NESTED" >&2; test -c /dev/kvm && echo kvm >&2;
      exit 7' >out 2>err
    status=$?
    [[ $status == 7 ]] || fail "exit status $status, not 7; stderr: $(tail -n 20 err)"
    seq 1 200000 | cmp - out || fail "stdout differs from seq 1 200000"
    for line in "on stderr" "$work" "$PV_RIG_PROBE" 1 kvm; do
      grep -qxF -- "$line" err || fail "stderr lacks '$line': $(cat err)"
    done
    grep -qx 200000 err && fail "stdout leaked into stderr"
    ;;
  no-kvm)
    PV_NESTED_CPU=Nehalem "$nested" -- echo ran >out 2>err
    status=$?
    [[ $status == 125 ]] || fail "exit status $status, not 125; stderr: $(cat err)"
    grep -q '/dev/kvm did not appear in L1' err || fail "no reason given: $(cat err)"
    grep -q ran out && fail "the command ran without /dev/kvm"
    ;;
  timeout)
    start=$(date +%s)
    # The rig's exchange directory (in QEMU's command line) goes under $work.
    TMPDIR=$work "$nested" --timeout-s 40 -- sleep 100000 >out 2>err
    status=$? took=$(( $(date +%s) - start ))
    [[ $status == 124 ]] || fail "exit status $status, not 124; stderr: $(cat err)"
    grep -q 'timed out after 40s' err || fail "no timeout message: $(cat err)"
    (( took < 100 )) || fail "took ${took}s for a 40 s timeout"
    pgrep -f "$work/pv-nested" >/dev/null && fail "a QEMU of the run is still there"
    ;;
  *) fail "unknown case '$1'" ;;
esac
echo "PASS: $1"
