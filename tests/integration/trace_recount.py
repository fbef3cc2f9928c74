"""awf-shim-trace against an independent recount over the real traces the suite recorded.

secrets_scan keeps a copy of every trace a process under the shim wrote (Registry.snapshots).
run.py runs TraceRecount after every other test, before the secrets scan (which deletes the
copies): `awf-shim-trace summary --json` over each non-empty copy, and over all of them merged,
must state the processes, hosts (ports, connects, tunnels by outcome, bytes, closes), HTTP groups
(counts, percentiles), error groups, verdict and input counts that tests/trace_tool/recount.py
counts from the same files without the tool's code. A mismatch names the trace and the fact. A
full run must also have tunnelled to a port other than 443 (test_routing's echo port)."""
import json
import os
import subprocess
import sys
import unittest

import harness
import secrets_scan

sys.path.insert(0, os.path.join(harness.ROOT, "tests", "trace_tool"))
import recount  # noqa: E402

TOOL = os.path.join(harness.BUILD, "shim", "tools", "awf-shim-trace")
SHOWN = 50  # mismatches shown in the failure (all of them in system-out)


def tunnelled_ports(doc):
    """{host: ports other than 443} of the hosts the summary says were tunnelled to."""
    return {h["host"]: [p for p in h["ports"] if p != 443] for h in doc["hosts"]
            if h["tunnels"]["open"] and any(p != 443 for p in h["ports"])}


class TraceRecount(unittest.TestCase):
    junit_output = ""

    def summary(self, chk, where, paths):
        """The tool's summary of paths checked against the recount; None if it gave none."""
        r = subprocess.run([TOOL, "summary", "--json", *paths], capture_output=True, text=True,
                           timeout=harness.HANG_GUARD)
        try:
            doc = json.loads(r.stdout) if r.returncode in (0, 1) else None  # 1: unreadable lines, recounted
        except ValueError:
            doc = None
        if doc is None:
            chk.failures.append(f"{where}: awf-shim-trace summary --json exited {r.returncode}: "
                                f"{r.stderr.strip()[:300]}")
            return None
        recount.check_summary(chk, where, doc, [(p, p) for p in paths])
        return doc

    def test_summary_facts_match_the_recount_over_every_trace(self):
        registry = secrets_scan.RUN
        if registry is None:
            self.skipTest("only meaningful under run.py, which keeps every trace")
        with registry.lock:
            kept = sorted(registry.snapshots.values())
        traces = [(copy, origin) for copy, origin in kept if os.path.exists(copy) and os.path.getsize(copy) > 0]
        if not traces:
            if secrets_scan.FULL_RUN:
                self.fail("a full run kept no non-empty trace")
            self.skipTest("no test selected by this run wrote a trace")
        chk = recount.Checker("awf-shim-trace")
        for copy, origin in traces:
            self.summary(chk, f"trace {copy} ({origin})", [copy])
        merged = self.summary(chk, f"all {len(traces)} traces merged", [copy for copy, _ in traces])
        ports = tunnelled_ports(merged) if merged else {}
        lines = sum(i["lines"] for i in merged["input"]) if merged else 0
        summary = (f"awf-shim-trace summary --json over {len(traces)} traces ({lines} lines) and their merge, "
                   f"recounted: {len(chk.failures)} mismatches; tunnelled to ports other than 443: "
                   + (", ".join(f"{h} {p}" for h, p in sorted(ports.items())) or "none"))
        TraceRecount.junit_output = "\n".join([summary, *chk.failures])
        print("\n" + summary, flush=True)
        if secrets_scan.FULL_RUN and merged and not ports:
            chk.failures.append("no trace of the full run tunnelled to a port other than 443 (test_routing's echo "
                                "port should have)")
        if chk.failures:
            self.fail(f"{len(chk.failures)} fact(s) differ (all in system-out):\n" + "\n".join(chk.failures[:SHOWN]))
