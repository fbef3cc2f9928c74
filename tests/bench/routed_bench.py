"""Network clients side by side in one run, configurations interleaved so that drift on the
machine hits all alike (in a shuffled order each round, so that what one configuration leaves
behind — a launcher's extra process, a mount namespace, warm or cold caches — does not always fall
on the same next one):

- unrouted: curl straight to the upstream (loopback, never tunnelled) with no preload, the
  front inert (AWF_SHIM unset) and the front active (AWF_SHIM=1), and no preload again (an A/A
  control: its ratio is the noise of the run);
- routed, through a real Squid: the same client using the proxy itself (`curl -x`,
  http.client's set_tunnel), under the shim (AWF_SHIM=1, no proxy variables) and under
  proxychains-ng (`proxychains4 -q -f CONF`: proxy_dns, an http entry for the same Squid); for
  fresh curls also `curl -x` naming the proxy (E.NAMED_PROXY_URL): curl -x with an address never
  starts curl's resolver thread, which every lookup, the shim's included, costs; and `curl -x`
  again, the routed table's own A/A control.

For each: connect-to-first-byte with one fresh curl per request (curl's own breakdown; an
active shim also loads its engine in each), one curl making N sequential requests each on a new
connection (`Connection: close`; the steady state), 256 MiB downloads (routed: also the shim
with a trace and the TLS tap on / off), and the client's peak RSS and CPU time (wait4, through
tests/bench/rusage_run). Routed only: python3 http.client, N new connections in one process.

Runs inside a private network namespace (scripts/bench arranges it); every address is loopback."""
import os
import random
import shutil
import statistics
import subprocess
import tempfile

import bench_env as E
import net
from squid import Squid

NATIVE, SHIM, PROXYCHAINS = "curl -x (native proxying)", "curl via shim", "curl via proxychains-ng"
NATIVE_NAMED = "curl -x, the proxy by name"
NATIVE_AGAIN = "curl -x (A/A control)"
BULK_TRACE_TAP, BULK_TRACE_NOTAP = "curl via shim, trace + TLS tap", "curl via shim, trace, AWF_SHIM_TAP=off"
DIRECT, DIRECT_INERT, DIRECT_ACTIVE = "curl, no preload", "curl, front, AWF_SHIM unset", "curl, front, AWF_SHIM=1"
DIRECT_AGAIN = "curl, no preload (A/A control)"
BULK_BYTES = 256 * 1024 * 1024


class Usage:
    """Runs commands under tests/bench/rusage_run, which reports each one's peak RSS and CPU."""

    def __init__(self, build, work):
        self.tool = build.tool("rusage_run")
        self.out = os.path.join(work, "rusage")

    def run(self, argv, env, timeout=300):
        """Returns (stdout, peak RSS in KiB, CPU seconds user + system) of argv."""
        r = subprocess.run([self.tool, self.out, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:6])}… exited {r.returncode}: {r.stderr[-400:]}")
        with open(self.out) as f:
            kib, user_us, sys_us = (int(x) for x in f.read().split())
        return r.stdout, kib, (user_us + sys_us) / 1e6


class Clients:
    """Sets of curl configurations: (argv prefix, environment, curl options) by label."""

    def __init__(self, build, squid, ca, pc_conf, work):
        self.ca, self.work = ca, work
        self.usage = Usage(build, work)
        # Unrouted: the name is pinned to the upstream's loopback address, so no lookup happens
        # and the shim, active or not, leaves the connection alone.
        pin = ["--resolve", f"{net.API}:443:{net.UPSTREAM_IP}"]
        self.unrouted = {
            DIRECT: ([], E.plain(), pin),
            DIRECT_INERT: ([], E.front_unset(build), pin),
            DIRECT_ACTIVE: ([], E.front_active(build), pin),
            DIRECT_AGAIN: ([], E.plain(), pin),  # the noise of the run
        }
        self.routed = {
            NATIVE: ([], E.plain(), ["-x", squid.proxy_url]),
            SHIM: ([], E.front_active(build), []),
            PROXYCHAINS: (E.proxychains_argv(pc_conf), E.plain(), []),
        }
        self.routed_fresh = dict(self.routed)
        self.routed_fresh[NATIVE_NAMED] = (E.with_proxy_named(work), E.plain(), ["-x", E.NAMED_PROXY_URL])
        self.routed_fresh[NATIVE_AGAIN] = self.routed[NATIVE]  # the noise of the routed run
        self.trace = os.path.join(work, "bench-trace.jsonl")
        self.routed_bulk = dict(self.routed)
        self.routed_bulk[BULK_TRACE_TAP] = ([], E.front_active(build, AWF_SHIM_TRACE=self.trace), [])
        self.routed_bulk[BULK_TRACE_NOTAP] = ([], E.front_active(build, AWF_SHIM_TRACE=self.trace, AWF_SHIM_TAP="off"),
                                              [])

    def run_curl(self, spec, *args, timeout=300):
        prefix, env, extra = spec
        return self.usage.run([*prefix, "curl", "-s", "--cacert", self.ca, *extra, *args], env, timeout)


def ci95(samples):
    """Half-width of a ~95% interval for the median: the notch of a box plot, 1.58 IQR / sqrt(n)."""
    if len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return 1.58 * (q3 - q1) / len(samples) ** 0.5


def round_order(items, r):
    """The configurations in round r's order: a shuffle seeded by r (a rerun repeats it), so each
    configuration follows each other about equally often."""
    items = list(items)
    random.Random(r).shuffle(items)
    return items


def fresh_process(clients, configs, url, n):
    fields = ["time_namelookup", "time_connect", "time_appconnect", "time_starttransfer"]
    fmt = " ".join("%{" + f + "}" for f in fields)
    samples = {k: [] for k in configs}
    for i in range(n):
        for label in round_order(configs, i):
            out, kib, cpu = clients.run_curl(configs[label], "-o", "/dev/null", "-w", fmt, url, timeout=60)
            samples[label].append([float(x) * 1000 for x in out.split()] + [kib, cpu * 1000])
    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in samples.items()}
    base = med[next(iter(configs))][3]
    print(f"curl, one fresh process per request, {n} requests each; medians, ms since curl's start of transfer:")
    print(f"  {'configuration':30} {'DNS done':>8} {'connected':>9} {'TLS done':>8} {'1st byte':>8} {'ratio':>6}"
          f" {'CPU ms':>7} {'peak RSS':>9}")
    for label, m in med.items():
        print(f"  {label:30} {m[0]:8.2f} {m[1]:9.2f} {m[2]:8.2f} {m[3]:8.2f} {m[3] / base:6.3f} {m[5]:7.2f}"
              f" {m[4] / 1024:7.1f}MB")
    # Connect-to-first-byte: from the end of the name lookup (docs/design.md's budget).
    c2fb = {k: statistics.median(x[3] - x[0] for x in v) for k, v in samples.items()}
    return {"ttfb": {k: m[3] for k, m in med.items()}, "dns": {k: m[0] for k, m in med.items()}, "c2fb": c2fb,
            "rss": {k: m[4] for k, m in med.items()}, "cpu": {k: m[5] for k, m in med.items()},
            "ci": {k: ci95([x[3] for x in v]) for k, v in samples.items()}}


def sequential(clients, configs, url, n, runs):
    """One curl process, n+1 sequential requests each on a new connection; the first (which also
    pays one-time set-up: the engine's load, proxychains' resolver) is dropped."""
    config = os.path.join(clients.work, "sequential.curlrc")
    with open(config, "w") as f:
        f.write('header = "Connection: close"\n'
                'write-out = "%{time_connect} %{time_appconnect} %{time_starttransfer}\\n"\n')
        for i in range(n + 1):
            f.write(f'url = "{url}?{i}"\noutput = "/dev/null"\n')
    samples = {k: [] for k in configs}
    cpus = {k: [] for k in configs}
    for r in range(runs):
        for label in round_order(configs, r):
            out, _, cpu = clients.run_curl(configs[label], "-K", config, timeout=600)
            rows = [[float(x) * 1000 for x in line.split()] for line in out.splitlines()]
            if len(rows) != n + 1:
                raise RuntimeError(f"{label}: {len(rows)} of {n + 1} requests reported")
            samples[label] += rows[1:]
            cpus[label].append(cpu * 1000 / (n + 1))
    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in samples.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    base = med[next(iter(configs))][2]
    print(f"\ncurl, one process, {n} sequential requests each on a new connection (Connection: close), {runs} runs;"
          " medians, ms:")
    print(f"  {'configuration':30} {'connected':>9} {'TLS done':>8} {'1st byte':>8} {'ratio':>6} {'CPU ms/request':>15}")
    for label, m in med.items():
        print(f"  {label:30} {m[0]:9.3f} {m[1]:8.3f} {m[2]:8.3f} {m[2] / base:6.3f} {cpu[label]:15.3f}")
    return {"ttfb": {k: m[2] for k, m in med.items()}, "cpu": cpu,
            "ci": {k: ci95([x[2] for x in v]) for k, v in samples.items()}}


def bulk(clients, configs, url, runs):
    first = next(iter(configs))
    speeds = {k: [] for k in configs}
    cpus = {k: [] for k in configs}
    rss = {k: 0 for k in configs}
    for r in range(runs):
        for label in round_order(configs, r):
            if os.path.exists(clients.trace):
                os.unlink(clients.trace)
            out, kib, cpu = clients.run_curl(configs[label], "--http1.1", "-o", "/dev/null", "-w", "%{speed_download}",
                                             url, timeout=600)
            speeds[label].append(float(out) / 2**20)
            cpus[label].append(cpu)
            rss[label] = max(rss[label], kib)
    best = {k: max(v) for k, v in speeds.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    print(f"\n{BULK_BYTES >> 20} MiB download, {runs} runs each: best MiB/s (range), ratio of times; median client CPU"
          " (user+sys), ratio")
    for label in best:
        lo, hi = min(speeds[label]), best[label]
        print(f"  {label:40} {hi:5.0f} ({lo:3.0f}–{hi:3.0f}) {best[first] / hi:6.3f}   CPU {cpu[label]:6.3f} s"
              f" {cpu[label] / cpu[first]:6.3f}   peak RSS {rss[label] / 1024:5.1f}MB")
    if BULK_TRACE_TAP in best:
        tap = best[BULK_TRACE_NOTAP] / best[BULK_TRACE_TAP]
        tap_cpu = cpu[BULK_TRACE_TAP] / cpu[BULK_TRACE_NOTAP]
        print(f"  TLS tap on vs AWF_SHIM_TAP=off, both traced: ratio of times {tap:.3f}, of CPU {tap_cpu:.3f}")
    return {"speed": best, "cpu": cpu, "rss": rss}


PY_CLIENT = r"""
import http.client, ssl, statistics, sys, time
host, n, proxy = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None
ctx = ssl.create_default_context()
samples = []
for i in range(n + 1):
    start = time.perf_counter()
    if proxy:
        phost, pport = proxy.rsplit(":", 1)
        c = http.client.HTTPSConnection(phost, int(pport), context=ctx)
        c.set_tunnel(host, 443)
    else:
        c = http.client.HTTPSConnection(host, 443, context=ctx)
    c.request("GET", "/ttfb")
    r = c.getresponse()
    if i:  # the first connection also pays one-time set-up (and, shimmed, the engine load)
        samples.append((time.perf_counter() - start) * 1000)
    r.read()
    c.close()
print(statistics.median(samples))
"""
PY_NATIVE, PY_SHIM, PY_PROXYCHAINS = ("python http.client, set_tunnel", "python http.client via shim",
                                      "python http.client via proxychains-ng")


def python_steady(clients, build, pc_conf, n, runs):
    argv = ["/usr/bin/python3", "-c", PY_CLIENT, E.ROUTED_NAME, str(n)]
    configs = {
        PY_NATIVE: (argv + [E.PROXY_URL.split("//")[1]], E.plain()),
        PY_SHIM: (argv, E.front_active(build)),
        PY_PROXYCHAINS: (E.proxychains_argv(pc_conf) + argv, E.plain()),
    }
    meds = {k: [] for k in configs}
    for r in range(runs):
        for label in round_order(configs, r):
            cmd, env = configs[label]
            out, _, _ = clients.usage.run(cmd, dict(env, SSL_CERT_FILE=clients.ca), timeout=600)
            meds[label].append(float(out))
    med = {k: statistics.median(v) for k, v in meds.items()}
    print(f"\npython3 http.client, one process, {n} new connections; median of {runs} runs' medians (ms,"
          " request start to response head):")
    for label, m in med.items():
        print(f"  {label:38} {m:8.2f} {m / med[PY_NATIVE]:6.3f}")
    return med


def run(build, fresh_n, n, runs, bulk_runs, pc_conf):
    work = tempfile.mkdtemp(prefix="awfshim-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    try:
        return run_in(build, fresh_n, n, runs, bulk_runs, pc_conf, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_in(build, fresh_n, n, runs, bulk_runs, pc_conf, work):
    ca = net.make_ca(os.path.join(work, "ca"), [net.API])
    with net.upstream(work, "https", [f"{net.UPSTREAM_IP}:443"], "http", os.path.join(work, "ca")), \
            Squid(os.path.join(work, "squid"), port=3128, allow=[f".{net.TENANT}"],
                  hosts={net.API: net.UPSTREAM_IP}) as squid:
        if squid.proxy_url != E.PROXY_URL:
            raise RuntimeError(f"Squid listens on {squid.proxy_url}, the configurations expect {E.PROXY_URL}")
        clients = Clients(build, squid, ca, pc_conf, work)
        url, big = f"https://{net.API}/ttfb", f"https://{net.API}/bytes/{BULK_BYTES}"
        print("== unrouted traffic: curl straight to the upstream (loopback: never tunnelled)")
        unrouted = {"fresh": fresh_process(clients, clients.unrouted, url, fresh_n),
                    "seq": sequential(clients, clients.unrouted, url, n, runs),
                    "bulk": bulk(clients, clients.unrouted, big, bulk_runs)}
        print("\n== routed traffic through a real Squid: native proxying vs shim vs proxychains-ng")
        routed = {"fresh": fresh_process(clients, clients.routed_fresh, url, fresh_n),
                  "seq": sequential(clients, clients.routed, url, n, runs),
                  "python": python_steady(clients, build, pc_conf, n, runs),
                  "bulk": bulk(clients, clients.routed_bulk, big, bulk_runs)}
        return {"unrouted": unrouted, "routed": routed}
