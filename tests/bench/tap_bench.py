"""The TLS tap's per-call cost where it patches code: ssl_write_bench is built like Node.js
(OpenSSL linked in and exported), so under the shim with a trace its SSL_write/SSL_read entries
jump to the tap's hooks. Each iteration is one HTTP/1.1 exchange (client SSL_write, server
SSL_read and SSL_write, client SSL_read over memory BIOs), and with the tap on the client's
tracker finishes one exchange and writes one `http` event per iteration. Configurations are
interleaved round by round; each reports its best round in ns per exchange."""
import os
import subprocess
import tempfile

import bench_env as E


def run(build, rounds, exchanges):
    print(f"== patched SSL calls: ns per HTTP/1.1 exchange (4 SSL calls), best of {rounds} rounds x {exchanges}")
    work = tempfile.mkdtemp(prefix="awfshim-bench-tap-", dir="/tmp")
    trace = os.path.join(work, "trace.jsonl")
    configs = [("no preload", E.plain()),
               ("shim, trace, AWF_SHIM_TAP=off (not patched)", E.front_active(build, AWF_SHIM_TRACE=trace,
                                                                              AWF_SHIM_TAP="off")),
               ("shim, trace, tap on (patched)", E.front_active(build, AWF_SHIM_TRACE=trace))]
    best = {name: None for name, _ in configs}
    for _ in range(rounds):
        for name, env in configs:
            r = subprocess.run([build.tool("ssl_write_bench"), "1", str(exchanges)], env=env, capture_output=True,
                               text=True, timeout=600, check=True)
            ns = float(r.stdout.strip())
            best[name] = ns if best[name] is None else min(best[name], ns)
        os.truncate(trace, 0)  # one http event per exchange: keep the file small
    # The figure means something only if the tap did patch: one more short run, then look.
    subprocess.run([build.tool("ssl_write_bench"), "1", "10"], env=configs[2][1], capture_output=True, timeout=60,
                   check=True)
    with open(trace) as f:
        patched = '"outcome":"patched"' in f.read()
    for name, _ in configs:
        print(f"  {name:<46} {best[name]:10.0f} ns")
    if not patched:
        raise RuntimeError("the tap did not patch ssl_write_bench: see " + trace)
    os.remove(trace)
    os.rmdir(work)
    off, on = best[configs[1][0]], best[configs[2][0]]
    print(f"  added by the tap: {on - off:.0f} ns per exchange, {(on - off) / 4:.0f} ns per patched SSL call "
          "(hook, tracker, and one trace event per exchange)")
    return dict(plain=best[configs[0][0]], off=off, on=on)
