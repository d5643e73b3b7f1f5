#!/usr/bin/env python3
"""bench/boot: process start -> first serial byte, and -> guest reset.

Runs patchvisor-vmm and QEMU microvm (-M microvm -enable-kvm) N times each on
the same test guest (images/testguest, `testguest.quick`: banner, then
reset), alternating the two so both see the same machine load, and prints
medians, ratios and peak RSS.

  bench/boot/boot_bench.py [--build-dir DIR] [--runs 20] [--json]

The clock starts just before fork/exec and stops when the first byte of the
guest's serial output arrives on the child's stdout pipe, then when the child
exits. Peak RSS is VmHWM of the process image: patchvisor-vmm reports its
own in its JSON summary, QEMU's is sampled from /proc in 3 extra untimed runs.
For patchvisor-vmm the guest memory it touched (JSON, via mincore) is also
subtracted, giving the VMM's own footprint; QEMU's figure includes its guest
memory.
"""
import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time

TARGET_FIRST_BYTE_MS = 5.0
TARGET_RATIO = 8.0
TARGET_VMM_RSS_MIB = 5.0


def run_once(command):
    """Returns (first_byte_ms, exit_ms, max_rss_kib, stdout bytes, exit code)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
    first_byte = None
    output = b""
    fd = child.stdout.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 30.0)
        if not ready:
            child.kill()
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if first_byte is None:
            first_byte = time.perf_counter()
        output += chunk
    _, status, usage = os.wait4(child.pid, 0)
    end = time.perf_counter()
    child.returncode = os.waitstatus_to_exitcode(status)
    first_ms = (first_byte - start) * 1000 if first_byte else float("nan")
    return first_ms, (end - start) * 1000, usage.ru_maxrss, output, child.returncode


def peak_rss_by_polling(command):
    """Runs once, sampling the child's VmHWM (per process image, unlike
    ru_maxrss which inherits the harness's own RSS across fork/exec)."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
    peak = 0
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.0005)
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--build-dir", default=os.path.join(root, "build"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--mem-mib", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    vmm = os.path.join(args.build_dir, "vmm", "patchvisor-vmm")
    guest = os.path.join(args.build_dir, "images", "testguest", "testguest.elf")
    qemu = shutil.which("qemu-system-x86_64")
    for path, what in ((vmm, "patchvisor-vmm"), (guest, "test guest")):
        if not os.path.exists(path):
            sys.exit(f"boot_bench: no {what} at {path}; build it first")
    if not qemu:
        sys.exit("boot_bench: qemu-system-x86_64 missing (scripts/install-deps --bench)")

    commands = {
        "patchvisor-vmm": [vmm, "--kernel", guest, "--cmdline", "testguest.quick",
                           "--mem-mib", str(args.mem_mib), "--serial-log", "-", "--json",
                           "--timeout-s", "30"],
        "qemu-microvm": [qemu, "-M", "microvm,x-option-roms=off,rtc=off", "-enable-kvm",
                         "-m", str(args.mem_mib), "-nodefaults", "-no-user-config",
                         "-nographic", "-no-reboot", "-serial", "stdio",
                         "-kernel", guest, "-append", "testguest.quick"],
    }
    results = {name: {"first_byte_ms": [], "exit_ms": [], "max_rss_kib": [],
                      "guest_kib": []} for name in commands}
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        for name, command in commands.items():
            first, end, rss, output, code = run_once(command)
            text = output.decode(errors="replace")
            if "testguest: quick boot, resetting" not in text:
                sys.exit(f"boot_bench: {name} did not boot the guest (exit {code}):\n{text}")
            if name == "patchvisor-vmm":
                if code != 0:
                    sys.exit(f"boot_bench: patchvisor-vmm exited {code}:\n{text}")
                summary = json.loads(text.strip().splitlines()[-1])
                results[name]["guest_kib"].append(summary["guest_resident_kib"])
            if name == "patchvisor-vmm":
                rss = summary["peak_rss_kib"]  # its own VmHWM
            results[name]["first_byte_ms"].append(first)
            results[name]["exit_ms"].append(end)
            results[name]["max_rss_kib"].append(rss)
    # QEMU reports no VmHWM itself: a few untimed runs sample it from /proc.
    results["qemu-microvm"]["max_rss_kib"] = [
        peak_rss_by_polling(commands["qemu-microvm"]) for _ in range(3)]

    report = {}
    for name, data in results.items():
        report[name] = {
            "runs": args.runs,
            "first_byte_ms_median": statistics.median(data["first_byte_ms"]),
            "reset_ms_median": statistics.median(data["exit_ms"]),
            "peak_rss_mib_median": statistics.median(data["max_rss_kib"]) / 1024,
        }
        if data["guest_kib"]:
            own = [rss - guest for rss, guest in zip(data["max_rss_kib"], data["guest_kib"])]
            report[name]["vmm_rss_excluding_guest_mib_median"] = statistics.median(own) / 1024
    ours, peer = report["patchvisor-vmm"], report["qemu-microvm"]
    report["ratio_first_byte"] = peer["first_byte_ms_median"] / ours["first_byte_ms_median"]
    report["ratio_reset"] = peer["reset_ms_median"] / ours["reset_ms_median"]
    report["load_average_at_start"] = load_before

    print(f"boot bench: {args.runs} runs each, test guest 'testguest.quick', "
          f"{args.mem_mib} MiB guest memory, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} at start")
    print(f"{'':18} {'first byte':>12} {'reset':>12} {'peak RSS':>10} {'RSS w/o guest':>14}")
    for name in commands:
        row = report[name]
        own = row.get("vmm_rss_excluding_guest_mib_median")
        own_text = f"{own:.2f} MiB" if own is not None else "n/a"
        print(f"{name:18} {row['first_byte_ms_median']:9.2f} ms {row['reset_ms_median']:9.2f} ms "
              f"{row['peak_rss_mib_median']:6.1f} MiB {own_text:>14}")
    print(f"ratio (qemu / patchvisor): first byte {report['ratio_first_byte']:.1f}x, "
          f"reset {report['ratio_reset']:.1f}x")
    checks = [
        ("first byte median <= 5 ms", ours["first_byte_ms_median"] <= TARGET_FIRST_BYTE_MS),
        (">= 8x faster than QEMU microvm to first byte", report["ratio_first_byte"] >= TARGET_RATIO),
        ("VMM RSS excluding guest memory <= 5 MiB",
         ours["vmm_rss_excluding_guest_mib_median"] <= TARGET_VMM_RSS_MIB),
    ]
    for label, passed in checks:
        print(f"target {'met' if passed else 'MISSED'}: {label}")
    if args.json:
        print(json.dumps(report))
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
