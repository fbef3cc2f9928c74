"""The closing table: every figure next to its budget from docs/design.md ("Performance budgets
(measured as ratios in one run)"), MISS where the budget is missed.

Budgets:
- inert, out of scope, or active without network: process start and every hooked call ≤ 1.02
  of no preload;
- active, unrouted: ≤ +50 ns per read/write, ≤ +2 µs per connect;
- routed: connect-to-first-byte ≤ 1.05 of the same client proxying natively; bulk ≤ 1.03; with
  the trace and the TLS tap on ≤ 1.10;
- beat proxychains-ng on each of these, side by side (ratio < 1).
Rows without a budget show "—" (client CPU, lookups); the engine's load is held to 1/5 of the
shared-library engine's and a routed curl's peak RSS to 1.03 of curl -x (issue #17); the trace
reader's 300 MB/s is the target tests/trace_tool/bench_trace.sh states.

The last column is the noise of the row's measurement in this run: how far an A/A control
("no preload" measured again as if it were another configuration, or under no preload the call
through its symbol against libc direct) comes out from 1, or the row's own spread (process start:
the ~95% interval of the paired ratio; hooked calls: how much the rounds disagree;
connect-to-first-byte: the ~95% interval of either median). A MISS by less than that is
marked "(in noise)": this run cannot tell it from a pass."""
import micro_bench as M
import routed_bench as R
import start_bench as S


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "KiB":
        return f"{value / 1024:.1f} MB"
    if unit == "ns" and abs(value) >= 10000:
        return f"{value / 1000:.1f} µs"
    if unit == "ns" and abs(value) >= 1000:
        return f"{value / 1000:.2f} µs"
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:.{digits}f} {unit}"


def ratio_of(base, value, higher_is_better=False):
    if base is None or value is None or base <= 0 or value <= 0:
        return None
    return base / value if higher_is_better else value / base


class Table:
    HEAD = ("metric", "baseline", "shim", "ratio", "target", "noise")

    def __init__(self):
        self.body, self.misses = [], []

    def section(self, title):
        self.body.append((title,))

    def add(self, metric, base, shim, unit, kind, limit=None, higher=False, aa=None, ratio=None, noise=None,
            texts=None):
        """kind: 'ratio' (ratio ≤ limit), 'added' (shim - base ≤ limit, in unit), 'beat'
        (ratio < 1), 'info' (no budget), 'at_least' (shim ≥ limit; no baseline).
        aa: (base, again) of the A/A control for this measurement, or noise: its distance from 1.
        ratio: when not shim/base (a median of paired ratios); texts: (baseline, shim) cells."""
        if ratio is None:
            ratio = ratio_of(base, shim, higher)
        if noise is None and aa and ratio_of(aa[0], aa[1], higher) is not None:
            noise = abs(ratio_of(aa[0], aa[1], higher) - 1)
        shim_text, miss, excess, target = fmt(shim, unit), False, None, "—"
        if kind == "ratio" and ratio is not None:
            target, miss, excess = f"≤ {limit:.2f}", ratio > limit, ratio - limit
        elif kind == "added" and ratio is not None:
            added = shim - base
            shim_text += f" ({'+' if added >= 0 else '−'}{fmt(abs(added), unit)})"
            if limit is not None:
                target, miss = f"≤ +{fmt(limit, unit)}", added > limit
                excess = (added - limit) / base  # as a fraction of the call, like the noise
        elif kind == "beat" and ratio is not None:
            target, miss, excess = "< 1 (beat)", ratio >= 1.0, ratio - 1.0
        elif kind == "at_least":
            target = f"≥ {fmt(limit, unit)}"
            miss = shim is not None and shim < limit
        if texts:
            base_text, shim_text = texts
        else:
            base_text = fmt(base, unit) if kind != "at_least" else "—"
        if miss:
            target += "  MISS" + (" (in noise)" if noise is not None and excess is not None and excess <= noise else "")
            self.misses.append(metric)
        self.body.append((metric, base_text, shim_text,
                          f"{ratio:.3f}" if ratio is not None else "—", target,
                          f"±{noise * 100:.1f}%" if noise is not None else ""))

    def render(self):
        rows = [self.HEAD] + [b for b in self.body if len(b) > 1]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEAD))]

        def line(cells):
            return " | ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                              for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        sep = "-+-".join("-" * w for w in widths)
        out = [line(self.HEAD), sep]
        out += [f"-- {b[0]}" if len(b) == 1 else line(b) for b in self.body]
        out.append(sep)
        out.append(f"{len(self.misses)} MISS" + (": " + "; ".join(self.misses) if self.misses else ""))
        return "\n".join(out)


def start_rows(t, start):
    """Per start: median µs; ratio: paired (the median over rounds of each round's ratio)."""
    t.section("process start (median µs per start; ratio: paired within rounds)")
    if not start:
        return
    s, f = start["start"], start["first_lookup"]

    def row(metric, table, base, cfg, kind, limit=None, again=S.AGAIN):
        # Noise: the A/A control's distance from 1, or the row's own ~95% interval, the larger.
        ratio = table[cfg]["paired"] / table[base]["paired"]
        noise = max(abs(table[again]["paired"] - 1), table[cfg]["ci"] / table[cfg]["paired"],
                    table[base]["ci"] / table[base]["paired"])
        t.add(metric, table[base]["median"], table[cfg]["median"], "µs", kind, limit, ratio=ratio, noise=noise)

    # What preloading anything costs here, and the front's dlsym loop on top: the floor under the budget.
    row("/bin/true, empty preload (floor)", s, "no preload", "empty preload (floor)", "info")
    row("/bin/true, floor + the front's dlsym loop", s, "no preload", "floor + the front's dlsym loop", "info")
    for label, cfg in (("AWF_SHIM unset", "front, AWF_SHIM unset"), ("AWF_SHIM=1 (no network)", "front, AWF_SHIM=1"),
                       ("out of scope", "front, out of scope")):
        row(f"/bin/true, front, {label}", s, "no preload", cfg, "ratio", 1.02)
    row("/bin/true, AWF_SHIM=1 vs proxychains-ng", s, "proxychains-ng (preloaded)", "front, AWF_SHIM=1", "beat")
    row("start + 1st lookup, AWF_SHIM=1 (engine load)", f, "no preload, localhost", "front, AWF_SHIM=1, localhost",
        "info", again=S.LOOKUP_AGAIN)
    if S.SHARED_ENGINE in f:
        # The load alone: each configuration minus the inert front's same start and lookup. Noise:
        # the three medians' ~95% intervals, relative to the release engine's load.
        inert = f["front, AWF_SHIM unset, localhost"]
        ours, shared = f["front, AWF_SHIM=1, localhost"], f[S.SHARED_ENGINE]
        spread = sum(c["median"] * c["ci"] / c["paired"] for c in (inert, ours, shared))
        load, load_shared = ours["median"] - inert["median"], shared["median"] - inert["median"]
        t.add("engine load (dlopen + attach), vs the shared-library engine", load_shared, load, "µs", "ratio", 0.2,
              noise=spread / load_shared if load_shared > 0 else None)
    row("start + 1st routed lookup vs proxychains-ng", f, "proxychains-ng, routed name", "front, AWF_SHIM=1, routed name",
        "beat", again=S.LOOKUP_AGAIN)


def micro_rows(t, micro):
    """Each configuration's own pair: the call through its symbol against libc direct, in the same
    process (ratio and added: medians of the per-round figures). The noise: how far no preload's
    pair (two ways into the same libc function) is from 1, or how much the rounds of the row's
    own configuration disagree, whichever is larger."""
    t.section("hooked calls (Google Benchmark, per call: via the symbol vs libc direct, same process)")
    if not micro:
        return
    base, inert, idle, act, pc = (micro[k] for k in (M.NO_PRELOAD, M.INERT, M.ACTIVE_IDLE, M.ACTIVE, M.PROXYCHAINS))

    def noise(name, *cfgs):
        candidates = [abs(base[name]["ratio"] - 1)] if "ratio" in base.get(name, {}) else []
        candidates += [c[name]["spread"] for c in cfgs if "spread" in c.get(name, {})]
        return max(candidates) if candidates else None

    def pair(cfg, name, what, kind, limit=None):
        s = cfg.get(name)
        if not s:
            return
        if kind == "added":
            t.add(what, s["libc"], s["libc"] + s["added"], "ns", "added", limit, ratio=s["ratio"],
                  noise=noise(name, cfg))
        else:
            t.add(what, s["libc"], s["symbol"], "ns", kind, limit, ratio=s["ratio"], noise=noise(name, cfg))

    for name, what in (("fd/write_devnull", "write"), ("fd/read_devzero", "read"),
                       ("dns/hosts_file", "getaddrinfo unrouted"), ("connect/loopback", "connect loopback")):
        pair(inert, name, f"{what}, AWF_SHIM unset", "ratio", 1.02)
    for name, what in (("fd/write_devnull", "write"), ("fd/read_devzero", "read")):
        pair(idle, name, f"{what}, AWF_SHIM=1, engine not loaded", "ratio", 1.02)
    for name, what, limit in (("fd/write_devnull", "write", 50), ("fd/read_devzero", "read", 50),
                              ("connect/loopback", "connect loopback", 2000)):
        pair(act, name, f"{what}, engine loaded, unrouted", "added", limit)
    # No budget of its own: what every read/write of routed traffic pays (bulk's budget is ≤ 1.03).
    pair(act, "tunnel/write_1byte", "write 1 byte, tunnelled fd", "added")
    pair(act, "tunnel/read_1byte", "read 1 byte, tunnelled fd", "added")
    pair(act, "dns/hosts_file", "getaddrinfo unrouted, engine loaded", "info")
    if "dns/routed" in act and "dns/hosts_file" in base:
        t.add("getaddrinfo routed (fake DNS) vs local lookup", base["dns/hosts_file"]["libc"],
              act["dns/routed"]["symbol"], "ns", "info")
    # Against proxychains-ng: what each adds to the same call, each measured in its own process.
    for name, what in (("fd/write_devnull", "write"), ("fd/read_devzero", "read"),
                       ("connect/loopback", "connect loopback"), ("dns/hosts_file", "getaddrinfo unrouted")):
        a, p = act.get(name), pc.get(name)
        if a and p:
            t.add(f"{what}, added, engine loaded vs proxychains-ng", p["added"], a["added"], "ns", "beat",
                  ratio=a["ratio"] / p["ratio"], noise=noise(name, act, pc),
                  texts=(f"{'+' if p['added'] >= 0 else '−'}{fmt(abs(p['added']), 'ns')}",
                         f"{'+' if a['added'] >= 0 else '−'}{fmt(abs(a['added']), 'ns')}"))
    if "dns/routed" in act and "dns/routed" in pc:
        t.add("getaddrinfo routed, engine loaded vs proxychains-ng", pc["dns/routed"]["symbol"],
              act["dns/routed"]["symbol"], "ns", "beat", noise=noise("dns/hosts_file"))


def network_rows(t, net):
    unrouted, routed = (net["unrouted"], net["routed"]) if net else (None, None)
    t.section("unrouted curl, straight to the upstream (TTFB from curl's start of transfer: median ms; bulk: best "
              "MiB/s)")
    if not unrouted:
        return
    fr, sq, bk = unrouted["fresh"], unrouted["seq"], unrouted["bulk"]
    aa_fresh = (fr["ttfb"][R.DIRECT], fr["ttfb"][R.DIRECT_AGAIN])
    aa_seq = (sq["ttfb"][R.DIRECT], sq["ttfb"][R.DIRECT_AGAIN])

    def ttfb_noise(aa, table, *labels):
        """The A/A control's distance from 1, or the ~95% interval of either median, the larger."""
        return max([abs(aa[1] / aa[0] - 1)] + [table["ci"][k] / table["ttfb"][k] for k in labels])

    aa_bulk = (bk["speed"][R.DIRECT], bk["speed"][R.DIRECT_AGAIN])
    aa_cpu = (bk["cpu"][R.DIRECT], bk["cpu"][R.DIRECT_AGAIN])
    aa_rss = (fr["rss"][R.DIRECT], fr["rss"][R.DIRECT_AGAIN])
    aa_seq_cpu = (sq["cpu"][R.DIRECT], sq["cpu"][R.DIRECT_AGAIN])
    for label, cfg, kind in (("AWF_SHIM unset", R.DIRECT_INERT, "ratio"), ("AWF_SHIM=1", R.DIRECT_ACTIVE, "info")):
        t.add(f"unrouted TTFB, fresh curl, {label}", fr["ttfb"][R.DIRECT], fr["ttfb"][cfg], "ms", kind, 1.02,
              noise=ttfb_noise(aa_fresh, fr, R.DIRECT, cfg))
        t.add(f"unrouted TTFB, one curl, sequential, {label}", sq["ttfb"][R.DIRECT], sq["ttfb"][cfg], "ms", kind, 1.02,
              noise=ttfb_noise(aa_seq, sq, R.DIRECT, cfg))
        t.add(f"unrouted 256 MiB, {label}", bk["speed"][R.DIRECT], bk["speed"][cfg], "MiB/s", kind, 1.02, True,
              aa=aa_bulk)
    t.add("unrouted 256 MiB, client CPU, AWF_SHIM=1", bk["cpu"][R.DIRECT], bk["cpu"][R.DIRECT_ACTIVE], "s", "info",
          aa=aa_cpu)
    t.add("unrouted peak RSS, curl one request, AWF_SHIM=1", fr["rss"][R.DIRECT], fr["rss"][R.DIRECT_ACTIVE], "KiB",
          "info", aa=aa_rss)

    t.section("routed through Squid (TTFB from curl's start of transfer: median ms; bulk: best MiB/s, ratio of "
              "times; noise: a fresh curl's from the routed A/A control, the rest from the unrouted one)")
    fr, sq, py, bk = routed["fresh"], routed["seq"], routed["python"], routed["bulk"]
    aa_routed_fresh = (fr["ttfb"][R.NATIVE], fr["ttfb"][R.NATIVE_AGAIN])
    # From curl's start of transfer: the name lookup (the engine's load in it) included. The
    # same against curl -x naming its proxy, which looks a name up too; and from the lookup's end.
    t.add("routed TTFB, fresh curl, vs curl -x", fr["ttfb"][R.NATIVE], fr["ttfb"][R.SHIM], "ms", "ratio", 1.05,
          noise=ttfb_noise(aa_routed_fresh, fr, R.NATIVE, R.SHIM))
    t.add("routed TTFB, fresh curl, vs curl -x naming its proxy", fr["ttfb"][R.NATIVE_NAMED], fr["ttfb"][R.SHIM],
          "ms", "info", noise=ttfb_noise(aa_routed_fresh, fr, R.NATIVE_NAMED, R.SHIM))
    t.add("routed connect-to-first-byte, fresh curl, vs curl -x", fr["c2fb"][R.NATIVE], fr["c2fb"][R.SHIM], "ms",
          "ratio", 1.05, noise=ttfb_noise(aa_routed_fresh, fr, R.NATIVE, R.SHIM))
    t.add("routed TTFB, one curl, sequential, vs curl -x", sq["ttfb"][R.NATIVE], sq["ttfb"][R.SHIM], "ms", "ratio",
          1.05, noise=ttfb_noise(aa_seq, sq, R.NATIVE, R.SHIM))
    t.add("routed TTFB, python http.client, vs set_tunnel", py[R.PY_NATIVE], py[R.PY_SHIM], "ms", "ratio", 1.05,
          aa=aa_seq)
    t.add("routed TTFB, fresh curl, vs proxychains-ng", fr["ttfb"][R.PROXYCHAINS], fr["ttfb"][R.SHIM], "ms", "beat",
          noise=ttfb_noise(aa_routed_fresh, fr, R.PROXYCHAINS, R.SHIM))
    t.add("routed TTFB, one curl, sequential, vs proxychains-ng", sq["ttfb"][R.PROXYCHAINS], sq["ttfb"][R.SHIM], "ms",
          "beat", noise=ttfb_noise(aa_seq, sq, R.PROXYCHAINS, R.SHIM))
    t.add("routed TTFB, python http.client, vs proxychains-ng", py[R.PY_PROXYCHAINS], py[R.PY_SHIM], "ms", "beat",
          aa=aa_seq)
    t.add("routed client CPU per request, one curl, vs curl -x", sq["cpu"][R.NATIVE], sq["cpu"][R.SHIM], "ms", "info",
          aa=aa_seq_cpu)
    sp, cpu = bk["speed"], bk["cpu"]
    t.add("routed 256 MiB, vs curl -x", sp[R.NATIVE], sp[R.SHIM], "MiB/s", "ratio", 1.03, True, aa=aa_bulk)
    t.add("routed 256 MiB, trace + TLS tap, vs curl -x", sp[R.NATIVE], sp[R.BULK_TRACE_TAP], "MiB/s", "ratio", 1.10,
          True, aa=aa_bulk)
    t.add("routed 256 MiB, trace: tap on vs AWF_SHIM_TAP=off", sp[R.BULK_TRACE_NOTAP], sp[R.BULK_TRACE_TAP], "MiB/s",
          "ratio", 1.10, True, aa=aa_bulk)
    t.add("routed 256 MiB, vs proxychains-ng", sp[R.PROXYCHAINS], sp[R.SHIM], "MiB/s", "beat", None, True, aa=aa_bulk)
    t.add("routed 256 MiB, client CPU, vs curl -x", cpu[R.NATIVE], cpu[R.SHIM], "s", "info", aa=aa_cpu)
    t.add("routed 256 MiB, client CPU, trace + TLS tap, vs curl -x", cpu[R.NATIVE], cpu[R.BULK_TRACE_TAP], "s", "info",
          aa=aa_cpu)
    t.add("routed 256 MiB, client CPU, vs proxychains-ng", cpu[R.PROXYCHAINS], cpu[R.SHIM], "s", "info", aa=aa_cpu)
    rss = fr["rss"]
    t.add("routed peak RSS, curl one request, vs curl -x", rss[R.NATIVE], rss[R.SHIM], "KiB", "ratio", 1.03, aa=aa_rss)
    t.add("routed peak RSS, curl one request, vs proxychains-ng", rss[R.PROXYCHAINS], rss[R.SHIM], "KiB", "info",
          aa=aa_rss)
    t.add("routed peak RSS, curl 256 MiB, trace + tap, vs curl -x", bk["rss"][R.NATIVE], bk["rss"][R.BULK_TRACE_TAP],
          "KiB", "info")


def tap_rows(t, tap):
    t.section("TLS tap, patched SSL calls (ns per HTTP/1.1 exchange: 4 calls, 1 http event)")
    tap = tap or {}
    t.add("exchange, tap on (patched) vs AWF_SHIM_TAP=off", tap.get("off"), tap.get("on"), "ns", "added")
    t.add("exchange, AWF_SHIM_TAP=off vs no preload", tap.get("plain"), tap.get("off"), "ns", "ratio", 1.02)


def build_table(start, micro, net, tap, trace_mbps):
    t = Table()
    start_rows(t, start)
    micro_rows(t, micro)
    network_rows(t, net)
    tap_rows(t, tap)
    t.section("trace reader")
    t.add("awf-shim-trace summary throughput", None, trace_mbps, "MB/s", "at_least", 300)
    return t.render()
