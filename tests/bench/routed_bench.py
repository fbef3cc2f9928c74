"""Connect-to-first-byte through the shim vs the same client using the proxy itself, through a
real Squid, measured interleaved in one run:
- curl, one fresh process per request (so each shimmed request also pays the one-time load of
  the engine, which happens at the process's first name lookup);
- python3 http.client, many fresh connections in one process (steady state).
Runs inside a private network namespace (scripts/bench arranges it)."""
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "fixtures"))

import net  # noqa: E402
from harness import FRONT, shim_env, base_env  # noqa: E402
from squid import Squid  # noqa: E402


def curl_ttfb(url, ca, env, extra=()):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", ca, "-w", "%{time_starttransfer}", *extra, url],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    return float(out) * 1000


CLIENT = r"""
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


def python_ttfb(host, n, env, proxy=None):
    argv = ["/usr/bin/python3", "-c", CLIENT, host, str(n)] + ([proxy] if proxy else [])
    return float(subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=True).stdout)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = tempfile.mkdtemp(prefix="awfshim-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    ca = net.make_ca(os.path.join(work, "ca"), [net.API])
    with net.upstream(work, "https", [f"{net.UPSTREAM_IP}:443"], "http", os.path.join(work, "ca")), \
            Squid(os.path.join(work, "squid"), port=3128, allow=[f".{net.TENANT}"],
                  hosts={net.API: net.UPSTREAM_IP}) as squid:
        url = f"https://{net.API}/ttfb"
        native_env = base_env()
        shim = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=squid.proxy_url, GH_HOST=net.TENANT)
        native, shimmed = [], []
        for _ in range(n):
            native.append(curl_ttfb(url, ca, native_env, ["-x", squid.proxy_url]))
            shimmed.append(curl_ttfb(url, ca, shim))
        base = statistics.median(native)
        print(f"{'configuration':44} {'median ms':>10} {'ratio':>7}")
        print(f"{'curl -x, fresh process per request':44} {base:10.2f} {1:7.3f}")
        med = statistics.median(shimmed)
        print(f"{'curl via shim, fresh process per request':44} {med:10.2f} {med / base:7.3f}")
        env = dict(shim, SSL_CERT_FILE=ca)
        plain_env = dict(native_env, SSL_CERT_FILE=ca)
        rounds = [(python_ttfb(net.API, n, plain_env, "127.0.0.1:3128"), python_ttfb(net.API, n, env)) for _ in range(3)]
        py_native = statistics.median(r[0] for r in rounds)
        py_shim = statistics.median(r[1] for r in rounds)
        print(f"{'python http.client via proxy, one process':44} {py_native:10.2f} {1:7.3f}")
        print(f"{'python http.client via shim, one process':44} {py_shim:10.2f} {py_shim / py_native:7.3f}")

        # Bulk: 256 MiB downloads, best of 3 each, interleaved.
        big = f"https://{net.API}/bytes/{256 * 1024 * 1024}"
        trace = os.path.join(work, "bench-trace.jsonl")
        runs = {"curl -x (native proxying)": (native_env, ["-x", squid.proxy_url]),
                "curl via shim": (shim, []),
                "curl via shim, trace + TLS tap": (dict(shim, AWF_SHIM_TRACE=trace), []),
                "curl via shim, trace, AWF_SHIM_TAP=off": (dict(shim, AWF_SHIM_TRACE=trace, AWF_SHIM_TAP="off"), [])}
        speeds = {k: 0.0 for k in runs}
        for _ in range(3):
            for label, (env, extra) in runs.items():
                out = subprocess.run(["curl", "-s", "--http1.1", "-o", "/dev/null", "--cacert", ca, "-w", "%{speed_download}",
                                      *extra, big], env=env, capture_output=True, text=True, timeout=300, check=True)
                speeds[label] = max(speeds[label], float(out.stdout) / 2**20)
        print(f"\n{'256 MiB download':44} {'MiB/s':>10} {'ratio':>7}")
        base_speed = speeds["curl -x (native proxying)"]
        for label, speed in speeds.items():
            print(f"{label:44} {speed:10.0f} {base_speed / speed:7.3f}")
        print("(ratio: time relative to native proxying; the tap's own target compares tap on with AWF_SHIM_TAP=off: "
              f"{speeds['curl via shim, trace, AWF_SHIM_TAP=off'] / speeds['curl via shim, trace + TLS tap']:.3f})")


if __name__ == "__main__":
    main()
