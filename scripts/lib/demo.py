"""scripts/demo, inside its private network namespace: a firewall like AWF's (real Squid, fake
GHE.com data-residency tenant), the real Copilot CLI run through the shim, then a readable
summary of what the trace and Squid saw."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
from firewall import Firewall  # noqa: E402
from harness import BUILD  # noqa: E402


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
        print("awf-shim-trace summary:", flush=True)  # before the tool's own output, also into a file
        subprocess.run([os.path.join(BUILD, "shim", "tools", "awf-shim-trace"), "summary", trace], check=False)
        # Squid logs a CONNECT when its tunnel closes: give it a moment after the CLI's exit.
        fw.squid.wait_for_log(lambda e: e["method"] == "CONNECT", count=2, timeout=5)
        print("\nSquid's access log (firewall format):")
        for line in fw.squid.access_log_lines():
            print("  " + line)
        print("\nthe tenant saw (auth scheme and token kind only, never the token):")
        for q in fw.tenant_requests():
            print(f"  {q['status']} {q['method']:4} {q['host']}{q['path'].split('?')[0]}  auth={q['auth_scheme']} {q['token_kind']}")
    print(f"\nfull trace: {trace}  (awf-shim-trace timeline|errors|har {trace})")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
