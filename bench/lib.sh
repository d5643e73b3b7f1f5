# Helpers the benchmarks share; sourced by bench/*/run after setting
# bench_name (e.g. "bench/commit").
#
# Every bench times both sides itself, with the same clock (date +%s%N)
# around the whole process, the same number of runs, interleaved so both see
# the same machine load; it prints the median and the spread (min-max) of
# each side and only then the ratio of the medians, and prints no ratio at
# all when the two sides' outputs differ (bench_differ exits first).
#
# Fault injection, for the tests that prove the refusal (bench/test-bench):
# PV_BENCH_FAULT=SIDE makes the bench corrupt SIDE's output after SIDE ran
# and before it is checked; each bench's --help names its sides.

bench_fail() {
  echo "$bench_name: $*" >&2
  exit 1
}

# The two sides' outputs differ: no figure of this run may count.
bench_differ() {
  echo "$bench_name: outputs differ: $*" >&2
  echo "$bench_name: no ratio is printed; the timings of this run do not count" >&2
  exit 1
}

# bench_fault SIDE: true when PV_BENCH_FAULT asks to corrupt SIDE's output.
bench_fault() {
  [[ ${PV_BENCH_FAULT:-} == "$1" ]] || return 1
  echo "$bench_name: PV_BENCH_FAULT=$1: corrupting $1's output on purpose" >&2
}

bench_now_ns() { date +%s%N; }

# bench_seconds_since START_NS: seconds elapsed since START_NS, 3 decimals.
bench_seconds_since() {
  local now
  now=$(date +%s%N)
  awk -v a="$1" -v b="$now" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

bench_median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_summary VALUE...: "median M (min A, max B, spread S%)", S = (B - A) / M.
bench_summary() {
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      spread = 0
      if (m > 0) spread = 100 * (v[NR] - v[1]) / m
      printf "median %.3f (min %.3f, max %.3f, spread %.0f%%, %d runs)\n", m, v[1], v[NR], spread, NR
    }'
}

# bench_compact VALUE...: "M (A-B)", median, min and max, for tables.
bench_compact() {
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.3f (%.3f-%.3f)\n", m, v[1], v[NR]
    }'
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "inf"; else printf "%.2f\n", a / b }'; }

# bench_pair_ratios "A1 A2..." "B1 B2...": min-max of the per-run ratios Ai / Bi.
bench_pair_ratios() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 1; i <= n; i++) { r = y[i] > 0 ? x[i] / y[i] : 0; lo = (i == 1 || r < lo) ? r : lo; hi = (i == 1 || r > hi) ? r : hi }
    printf "per-run ratios %.2f-%.2f\n", lo, hi
  }'
}

# The machine's load, said with every run: these machines are shared. The
# busiest processes are those running for 10 s or more (ps's %CPU is an
# average over a process's life, so the bench's own short ones would top it).
bench_load() {
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; busiest processes:" \
    "$(ps -eo etimes=,pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 && n < 4 { printf "%s %s%%; ", $3, $2; n++ }')"
}

# bench_positive OPTION VALUE: VALUE must be a whole number >= 1.
bench_positive() {
  [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$bench_name: $1 wants a whole number >= 1, not '$2'" >&2; exit 2; }
}

# bench_tool NAME WHY: NAME must be on PATH.
bench_tool() {
  command -v "$1" >/dev/null || bench_fail "$1 is missing ($2; scripts/install-deps --bench installs it)"
}

# bench_help: the bench's leading comment block, as its --help.
bench_help() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
