"""The engine's functions on the routed path, for the linker to lay out side by side.

    scripts/lib/engine-order [--check] BUILD    (BUILD: a release build, meson --buildtype=release)

A process maps the engine's code 64 KB at a time (the kernel's fault-around), so a routed request
that runs 120 KB of functions scattered through 600 KB of text maps nearly all of it: most of the
RSS the engine adds to a curl. lld lays the functions that shim/platform/engine.order lists first,
in its order (--symbol-ordering-file); this writes that list.

It runs curl through the shim (AWF_SHIM=1) under valgrind's callgrind, inside the private network
namespace scripts/lib/engine-order makes, and records the engine functions each run executes:
  1. one routed request through a real Squid (what the RSS and TTFB budgets measure), twice;
  2. one through a proxy that holds its CONNECT reply for 0.3 s: the handshake the pump finishes;
  3. one with the trace and the TLS tap on.
Groups in that order, each sorted by name; a function already listed is not listed again.

--check runs 1 once and fails when the functions it executed that the list lacks add up to more
than CHECK_SLACK bytes: a function renamed or added on the routed path, a list gone stale."""
import argparse
import bisect
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import bench_env as E  # noqa: E402
import net  # noqa: E402
from squid import Squid  # noqa: E402

ORDER = os.path.join(ROOT, "shim", "platform", "engine.order")
CHECK_SLACK = 8192  # bytes of executed functions the list may lack: about two of the larger ones
HEADER = """# The engine's functions on the routed path, laid out first and side by side by lld
# (--symbol-ordering-file, meson.build). Written by scripts/lib/engine-order from a release build;
# scripts/test checks that it still covers the routed path (engine-order --check).
"""


def function_symbols(engine):
    """The engine's functions as [start, size, name], by address (sizes the table lacks: up to the
    next symbol)."""
    symbols = []
    nm = subprocess.run(["nm", "-S", "--defined-only", engine], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            symbols.append([int(f[0], 16), int(f[1], 16), f[3]])
        elif len(f) == 3 and f[1] in "tT":  # no size: the C runtime's own (frame_dummy, ...)
            symbols.append([int(f[0], 16), None, f[2]])
    if not symbols:
        raise SystemExit(f"engine-order: {engine} has no symbol table (stripped?): give it a build directory")
    symbols.sort(key=lambda s: s[0])
    for this, after in zip(symbols, symbols[1:] + [[symbols[-1][0] + 16, 0, ""]]):
        if this[1] is None:
            this[1] = after[0] - this[0]
    return symbols


def executed_functions(callgrind_out, engine, symbols):
    """Names of the engine's functions (`symbols`) with at least one instruction executed in the run."""
    addrs, names, in_engine, last = set(), {}, False, 0
    with open(callgrind_out) as f:
        for line in f:
            m = re.match(r"^(c?)ob=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if not m.group(1):
                    in_engine = os.path.realpath(names.get(m.group(2), "")) == engine
                continue
            if not in_engine:
                continue
            m = re.match(r"^(0x[0-9a-f]+|[+-]\d+)\s", line)
            if m:  # an instruction's address, absolute or relative to the previous line's
                pos = m.group(1)
                last = int(pos, 16) if pos.startswith("0x") else last + int(pos)
                addrs.add(last)
    starts = [s[0] for s in symbols]
    hit = {}
    for a in addrs:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < symbols[i][0] + symbols[i][1]:
            hit[symbols[i][2]] = symbols[i][1]
    return hit


class Runner:
    def __init__(self, build, work):
        self.build, self.work = build, work
        self.engine = os.path.realpath(os.path.join(build.dir, "libawfshim-core.so"))
        self.symbols = function_symbols(self.engine)
        self.ca = net.make_ca(os.path.join(work, "ca"), [net.API])
        self.runs = 0

    def curl(self, proxy_url, **env_extra):
        """One routed GET under callgrind; the engine functions it executed (name -> size)."""
        self.runs += 1
        out = os.path.join(self.work, f"callgrind.{self.runs}")
        env = E.front_active(self.build, AWF_SHIM_PROXY=proxy_url, **env_extra)
        argv = ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}",
                "curl", "-sS", "--max-time", "60", "--cacert", self.ca, "-o", "/dev/null", "-w", "%{http_code}",
                f"https://{net.API}/ttfb"]
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or r.stdout != "200":
            raise SystemExit(f"engine-order: curl through the shim failed ({r.returncode}, {r.stdout!r}): "
                             f"{r.stderr.strip()[-600:]}")
        hit = executed_functions(out, self.engine, self.symbols)
        print(f"engine-order: run {self.runs}: {len(hit)} functions, {sum(hit.values())} bytes", file=sys.stderr)
        return hit


def read_order():
    with open(ORDER) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("build")
    args = ap.parse_args()
    build = E.Build(args.build)
    with tempfile.TemporaryDirectory(prefix="awfshim-engine-order-") as work:
        os.chmod(work, 0o755)  # Squid drops privileges and reads its configuration here
        run = Runner(build, work)
        with net.upstream(work, "https", [f"{net.UPSTREAM_IP}:443"], "http", os.path.join(work, "ca")), \
                Squid(os.path.join(work, "squid"), port=3128, allow=[f".{net.TENANT}"],
                      hosts={net.API: net.UPSTREAM_IP}) as squid:
            if args.check:
                hit = run.curl(squid.proxy_url)
                missing = {n: s for n, s in hit.items() if n not in read_order()}
                size = sum(missing.values())
                names = subprocess.run(["c++filt"], input="\n".join(sorted(missing)), capture_output=True,
                                       text=True).stdout.split("\n")
                print(f"engine-order: the routed request ran {len(hit)} engine functions; {len(missing)} of them "
                      f"({size} bytes) are not in shim/platform/engine.order")
                for name in names[:20]:
                    if name:
                        print(f"  {name[:150]}")
                if size > CHECK_SLACK:
                    print(f"engine-order: more than {CHECK_SLACK} bytes: the list is stale; write it again with "
                          f"scripts/lib/engine-order {args.build}")
                    return 1
                print("engine-order: the list covers the routed path")
                return 0
            groups = [run.curl(squid.proxy_url), run.curl(squid.proxy_url)]
            with net.connect_proxy(work, name="held", maps=[f"*={net.UPSTREAM_IP}"], fault="delay=0.3") as held:
                groups.append(run.curl(f"http://127.0.0.1:{held.ports[0]}"))
            groups.append(run.curl(squid.proxy_url, AWF_SHIM_TRACE=os.path.join(work, "trace.jsonl")))
    listed, lines = set(), [HEADER]
    for group in groups:
        for name in sorted(set(group) - listed):
            lines.append(name + "\n")
            listed.add(name)
    with open(ORDER + ".tmp", "w") as f:
        f.writelines(lines)
    os.replace(ORDER + ".tmp", ORDER)
    print(f"engine-order: wrote {len(listed)} functions to shim/platform/engine.order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
