"""scripts/demo, inside its private network namespace: a firewall like AWF's (real Squid, fake
GHE.com data-residency tenant), the real Copilot CLI run through the shim, then a readable
summary of what the trace and Squid saw."""
import collections
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
from firewall import Firewall  # noqa: E402
from harness import read_trace  # noqa: E402


def main():
    copilot, out_dir = sys.argv[1], sys.argv[2]
    trace = os.path.join(out_dir, "trace.jsonl")
    if os.path.exists(trace):
        os.unlink(trace)
    run_dir = os.path.join(out_dir, "run")
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh firewall each time
    with Firewall(run_dir, copilot=copilot) as fw:
        print(f"firewall: Squid at {fw.squid.proxy_url}, allowlist {', '.join(fw.allow)}")
        print(f"tenant:   fake {fw.tenant} (GHE.com data residency), token github_pat_*** (the CLI's own)")
        print("running:  copilot -p 'say hi' (AWF_SHIM=1, no proxy variables; TLS end to end)\n")
        r = fw.run_cli(trace=trace)
        print("---- the CLI answered " + ("(exit 0) " if r.returncode == 0 else f"(exit {r.returncode}) ") + "----")
        print(r.stdout.strip() or "(nothing on stdout)")
        if r.returncode != 0:
            print(r.stderr.strip())
        print("-------------------------------\n")
        summarize(read_trace(trace))
        # Squid logs a CONNECT when its tunnel closes: give it a moment after the CLI's exit.
        fw.squid.wait_for_log(lambda e: e["method"] == "CONNECT", count=2, timeout=5)
        print("\nSquid's access log (firewall format):")
        for line in fw.squid.access_log_lines():
            print("  " + line)
        print("\nthe tenant saw (auth scheme and token kind only, never the token):")
        for q in fw.tenant_requests():
            print(f"  {q['status']} {q['method']:4} {q['host']}{q['path'].split('?')[0]}  auth={q['auth_scheme']} {q['token_kind']}")
    print(f"\nfull trace: {trace}")
    return r.returncode


def summarize(events):
    hosts = collections.OrderedDict()
    for e in events:
        if e["ev"] == "tunnel":
            h = hosts.setdefault(e["target"], {"tunnels": collections.Counter(), "out": 0, "in": 0})
            h["tunnels"][f"{e.get('status', '-')} {e['result']}" + (f" {e['squid_error']}" if e.get("squid_error") else "")] += 1
        elif e["ev"] == "close" and e.get("kind") == "tunnel":
            h = hosts.setdefault(f"{e['host']}:{e['port']}", {"tunnels": collections.Counter(), "out": 0, "in": 0})
            h["out"] += e["bytes_out"]
            h["in"] += e["bytes_in"]
    pids = {(e["pid"], e["exe"]) for e in events}
    print(f"trace: {len(events)} events from {len(pids)} process(es) that loaded the engine "
          f"({', '.join(sorted({exe for _, exe in pids}))})")
    print(f"{'host':48} {'tunnels (proxy status)':28} {'bytes out/in':>16}")
    for host, h in hosts.items():
        status = ", ".join(f"{n}× {s}" for s, n in h["tunnels"].items())
        print(f"{host:48} {status:28} {h['out']:>7}/{h['in']:<8}")
    errors = [e for e in events if e["ev"] == "error"]
    for e in errors:
        print(f"error: {e['where']}: {e['message']}")


if __name__ == "__main__":
    sys.exit(main())
