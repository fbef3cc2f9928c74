"""All of scripts/bench inside one private network namespace: process start, the hooks' per-call
cost, unrouted traffic with and without the front, routed traffic against native proxying and
proxychains-ng, patched SSL calls (the TLS tap in a Node-like executable), the trace reader; then one table of ratios against the budgets of
docs/design.md, each next to an A/A control that shows the noise of the run.

    bench.py --build DIR [--quick] [--trace-build-log FILE]

scripts/bench builds what this runs and arranges the namespace (`unshare -n -m`, lo up): every
address used here is loopback, and nothing else is reachable."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import bench_env as E
import micro_bench
import routed_bench
import start_bench
import summary
import tap_bench


def section(name, fn):
    """Runs one section; a failure is reported and leaves its rows n/a, the others still run."""
    start = time.monotonic()
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 — a broken section must not hide the rest
        print(f"!! {name} failed: {e}")
        traceback.print_exc(limit=3, file=sys.stdout)
        result = None
    print(f"({name}: {time.monotonic() - start:.0f} s)\n", flush=True)
    return result


def trace_tool(build, megabytes, build_log):
    print(f"== awf-shim-trace summary on a generated {megabytes} MB trace")
    if build_log:
        with open(build_log, errors="replace") as f:
            text = f.read()
        lines = text.splitlines()
        failed = next((l for l in lines if l.startswith("FAILED:")), "")
        error = next((l for l in lines if "error:" in l), text.strip()[-300:])
        print(f"skipped: awf-shim-trace does not build in {build.dir}:\n  {failed[:200]}\n  {error.strip()[:300]}")
        return None
    r = subprocess.run([os.path.join(E.ROOT, "tests", "trace_tool", "bench_trace.sh"), str(megabytes)],
                       env=dict(os.environ, AWF_BUILD=build.dir), capture_output=True, text=True, timeout=1200)
    print(r.stdout, end="")
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-500:])
    m = re.search(r"= (\d+) MB/s", r.stdout)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trace-build-log")
    ap.add_argument("--shared-engine", help="the packager build's engine (shared libraries), for the engine-load ratio")
    args = ap.parse_args()
    build = E.Build(args.build)
    q = args.quick
    plan = dict(start_rounds=15 if q else 100, lookup_rounds=15 if q else 60, micro_rounds=3 if q else 7, micro_reps=6 if q else 10, micro_min_time=0.02,
                fresh_requests=60 if q else 400, requests=40 if q else 200, runs=2 if q else 3, bulk_runs=3 if q else 7, trace_mb=256 if q else 1024)

    load = open("/proc/loadavg").read().split()[:3]
    print(f"awf-shim bench{' --quick' if q else ''}: {os.cpu_count()} CPUs, load average {' '.join(load)} at start, "
          f"proxychains-ng {E.proxychains_version()}, build {build.dir}\n", flush=True)
    work = tempfile.mkdtemp(prefix="awfshim-bench-pc-", dir="/tmp")
    pc_conf = E.write_proxychains_conf(os.path.join(work, "proxychains.conf"))

    start = section("process start", lambda: start_bench.run(build, plan["start_rounds"], plan["lookup_rounds"], pc_conf,
                                                                   args.shared_engine))
    micro = section("hooked calls", lambda: micro_bench.run(build, plan["micro_rounds"], plan["micro_reps"],
                                                            plan["micro_min_time"], pc_conf))
    network = section("network", lambda: routed_bench.run(build, plan["fresh_requests"], plan["requests"], plan["runs"], plan["bulk_runs"],
                                                        pc_conf))
    tap = section("patched SSL calls", lambda: tap_bench.run(build, 3 if q else 7, 5000 if q else 20000))
    trace = section("awf-shim-trace", lambda: trace_tool(build, plan["trace_mb"], args.trace_build_log))

    load = open("/proc/loadavg").read().split()[:3]
    print(f"== summary (load average {' '.join(load)} at the end; ratio: shim / baseline, for bulk the ratio of "
          "transfer times)")
    if float(load[1]) > (os.cpu_count() or 1):
        print(f"note: more runnable work than CPUs ({load[1]} over 5 minutes on {os.cpu_count()}): other work "
              "competes with every figure, and a ratio within a few % of its target is within the noise")
    print(summary.build_table(start, micro, network, tap, trace))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
