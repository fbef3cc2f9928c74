"""Per-call cost of the hooks: tests/bench/hook_micro (Google Benchmark). Each benchmark runs in
pairs inside one process — the call through its symbol (what LD_PRELOAD interposes) and the same
call straight into libc — with repetitions interleaved at random, so each process measures its
own added cost side by side. hook_micro runs under every configuration in turn, ROUNDS times
with the order rotating. Per round and benchmark: the fastest repetition of each side; over the
rounds: the median of the per-round figures (one round disturbed by other load on the shared
machine does not decide). Under "no preload" both sides reach libc: its ratio is the noise."""
import json
import os
import statistics
import subprocess
import tempfile

import bench_env as E

NO_PRELOAD, INERT, ACTIVE_IDLE, ACTIVE, PROXYCHAINS = (
    "no preload", "front, AWF_SHIM unset", "front, AWF_SHIM=1, engine not loaded",
    "front, AWF_SHIM=1, engine loaded", "proxychains-ng")

BENCHMARKS = [  # name, label, unit divisor (ns → unit), unit
    ("fd/write_devnull", "write(/dev/null, 1 byte)", 1, "ns"),
    ("fd/read_devzero", "read(/dev/zero, 1 byte)", 1, "ns"),
    ("fd/write_read_socketpair", "write+read, AF_UNIX socketpair", 1, "ns"),
    ("dns/numeric", "getaddrinfo(\"127.0.0.1\", NUMERICHOST)", 1000, "µs"),
    ("dns/hosts_file", "getaddrinfo(\"localhost\"), unrouted", 1000, "µs"),
    ("dns/routed", "getaddrinfo(routed name): fake DNS / proxy_dns", 1000, "µs"),
    ("connect/loopback", "connect 127.0.0.1 (+accept, 2 closes)", 1000, "µs"),
    ("tunnel/write_1byte", "write(1 byte) on a tunnelled fd (AWF_SHIM=1 only)", 1, "ns"),
    ("tunnel/read_1byte", "read(1 byte) on a tunnelled fd (AWF_SHIM=1 only)", 1, "ns"),
]


def configurations(build, pc_conf):
    routed = dict(AWF_BENCH_ROUTED_NAME=E.ROUTED_NAME)
    return [
        (NO_PRELOAD, E.plain(), None),
        (INERT, E.front_unset(build), None),
        # Active but never touching the network: only the fd benchmarks, before any lookup.
        (ACTIVE_IDLE, E.front_active(build), "^fd/"),
        # Tunnels through hook_micro's own proxy: write/read on an fd the shim follows.
        (ACTIVE, E.front_active(build, AWF_BENCH_LOAD_ENGINE="1", AWF_SHIM_PROXY=f"http://{E.MICRO_PROXY}",
                                AWF_BENCH_TUNNEL_PROXY=E.MICRO_PROXY, **routed), None),
        (PROXYCHAINS, dict(E.proxychains_preloaded(pc_conf), **routed), None),
    ]


def run_once(build, env, flt, min_time, repetitions, out_path):
    """One process: {benchmark: {"symbol": ns, "libc": ns}}, fastest repetition of each side."""
    argv = [build.tool("hook_micro"), f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={repetitions}",
            "--benchmark_enable_random_interleaving=true", f"--benchmark_out={out_path}",
            "--benchmark_out_format=json"]
    if flt:
        argv.append(f"--benchmark_filter={flt}")
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"hook_micro failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    with open(out_path) as f:
        doc = json.load(f)
    results = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"hook_micro {b['name']}: {b.get('error_message')}")
        if b.get("run_type", "iteration") != "iteration":
            continue  # mean/median/stddev of the repetitions
        name, side = b["name"].split("/real_time")[0].rsplit(":", 1)
        sides = results.setdefault(name, {})
        sides[side] = min(b["real_time"], sides.get(side, float("inf")))  # ns (the default unit)
    return doc["context"], results


def check_context(label, context):
    engine, pc = context.get("awfshim_engine"), context.get("proxychains")
    want_engine = "loaded" if label == ACTIVE else "not loaded"
    want_pc = "preloaded" if label == PROXYCHAINS else "no"
    if engine != want_engine or pc != want_pc:
        raise RuntimeError(f"hook_micro under '{label}': engine {engine}, proxychains {pc}; "
                           f"expected engine {want_engine}, proxychains {want_pc}")


def run(build, rounds, repetitions, min_time, pc_conf):
    """Returns {configuration: {benchmark: {"symbol", "libc", "ratio", "added", "spread"}}}: medians
    over the rounds (symbol and libc in ns; ratio symbol/libc and added symbol−libc per round),
    spread: half the range of the per-round ratios, relative to their median."""
    configs = configurations(build, pc_conf)
    per_round = {label: {} for label, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="awfshim-micro-") as tmp:
        out = os.path.join(tmp, "out.json")
        for r in range(rounds):
            for j in range(len(configs)):
                label, env, flt = configs[(j + r) % len(configs)]
                context, results = run_once(build, env, flt, min_time, repetitions, out)
                check_context(label, context)
                for name, sides in results.items():
                    per_round[label].setdefault(name, []).append(sides)
    summary = {}
    for label, benches in per_round.items():
        summary[label] = {}
        for name, rounds_ in benches.items():
            s = {"symbol": statistics.median(x["symbol"] for x in rounds_)}
            paired = [x for x in rounds_ if "libc" in x]
            if paired:
                s["libc"] = statistics.median(x["libc"] for x in paired)
                ratios = [x["symbol"] / x["libc"] for x in paired]
                s["ratio"] = statistics.median(ratios)
                s["spread"] = (max(ratios) - min(ratios)) / 2 / s["ratio"]  # how much the rounds disagree
                s["added"] = statistics.median(x["symbol"] - x["libc"] for x in paired)
            summary[label][name] = s
    print(f"== hooked calls: Google Benchmark, {rounds} rounds x {repetitions} interleaved repetitions x {min_time} s"
          " per side; per call, medians over rounds")
    print_table(summary)
    return summary


def print_table(summary):
    print(f"  {'':38} {'via symbol':>12} {'libc direct':>12} {'ratio':>7} {'± rounds':>8} {'added':>12}")
    for name, what, div, unit in BENCHMARKS:
        rows = [(label, summary[label][name]) for label in summary if name in summary[label]]
        if not rows:
            continue
        print(what)
        for label, s in rows:
            if "libc" in s:
                print(f"  {label:38} {s['symbol'] / div:9.2f} {unit:2} {s['libc'] / div:9.2f} {unit:2} {s['ratio']:7.3f}"
                      f" {s['spread']:8.3f} {s['added'] / div:+9.2f} {unit:2}")
            else:
                print(f"  {label:38} {s['symbol'] / div:9.2f} {unit:2}")
