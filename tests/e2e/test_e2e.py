"""End to end: the real GitHub Copilot CLI (npm, pinned) on a GHE.com data-residency tenant,
inside a network namespace whose only way out is a real Squid that allowlists by host name —
the setting of gh-aw-firewall #1330. The shim carries the CLI's own TLS (and so its own
authentication) through Squid; no proxy touches a token."""
import os
import shutil
import tempfile
import time
import unittest

from firewall import TOKEN, Firewall, install_copilot
from harness import read_trace

COPILOT = None
TENANT = "contoso-aw.ghe.com"


def setUpModule():
    global COPILOT
    COPILOT = install_copilot()


class E2E(unittest.TestCase):
    allow = None  # AWF's allowlist for a data-residency tenant

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="awfshim-e2e-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.fw = Firewall(self.dir, allow=self.allow, copilot=COPILOT).__enter__()
        self.addCleanup(self.fw.__exit__, None, None, None)
        self.trace = os.path.join(self.dir, "trace.jsonl")

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]

    def assert_no_secret_anywhere(self, result):
        for text in (open(self.trace).read() if os.path.exists(self.trace) else "", result.stdout, result.stderr):
            self.assertNotIn(TOKEN, text)
            self.assertNotIn(TOKEN[len("github_pat_"):], text)

    def squid_connects(self, host):
        return [e for e in self.fw.squid.parse_access_log() if e["method"] == "CONNECT" and e["url"] == f"{host}:443"]


class Success(E2E):
    def test_the_cli_authenticates_natively_through_squid(self):
        r = self.fw.run_cli(trace=self.trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello from the fake tenant", r.stdout)
        requests = self.fw.tenant_requests()
        by_path = {(q["host"], q["path"].split("?")[0]): q for q in requests}
        user = by_path[(f"api.{self.fw.tenant}", "/copilot_internal/user")]
        chat = by_path[(f"copilot-api.{self.fw.tenant}", "/chat/completions")]
        for q in (user, chat):
            self.assertEqual((q["auth_scheme"], q["token_kind"]), ("Bearer", "github_pat_"), q)
        self.assertEqual((chat["model"], chat["stream"]), ("gpt-5-mini", True))
        self.assertFalse([q for q in requests if q["path"].startswith("/copilot_internal/v2/token")])
        for host in (f"api.{self.fw.tenant}", f"copilot-api.{self.fw.tenant}"):
            entries = self.fw.squid.wait_for_log(lambda e, h=host: e["url"] == f"{h}:443", count=1, timeout=15)
            self.assertTrue(any(e["status"] == 200 and e["squid_status"].startswith("TCP_TUNNEL") for e in entries))
            self.assertTrue(any(t["target"] == f"{host}:443" and t["status"] == 200 for t in self.events("tunnel")))
        self.assert_no_secret_anywhere(r)


class Control(E2E):
    def test_without_the_shim_there_is_no_way_out(self):
        start = time.monotonic()
        r = self.fw.run_cli(shim=False)
        self.assertNotEqual(r.returncode, 0)
        # Not just any failure (a CLI that cannot even start fails too): the pinned CLI tried the
        # tenant and the network stopped it.
        self.assertIn("network fetch failed: request failed: error sending request for url "
                      f"(https://api.{self.fw.tenant}/copilot_internal/user)", r.stderr)
        self.assertEqual(self.fw.tenant_requests(), [])
        self.assertLess(time.monotonic() - start, 120)


class Coexistence(E2E):
    def test_a_cli_that_proxies_itself_is_traced_not_tunnelled_twice(self):
        r = self.fw.run_cli(proxy_env=True, trace=self.trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello from the fake tenant", r.stdout)
        tunnels = self.events("tunnel")
        self.assertTrue(tunnels)
        self.assertTrue(all(t.get("by") == "application" for t in tunnels), tunnels)
        self.assertFalse([c for c in self.events("connect") if c["decision"] == "tunnel"])
        api = f"api.{self.fw.tenant}"
        self.assertTrue(any(t["target"] == f"{api}:443" and t["status"] == 200 for t in tunnels))
        user_requests = [q for q in self.fw.tenant_requests() if q["path"] == "/copilot_internal/user"]
        self.assertTrue(user_requests)
        # Squid logs a CONNECT when its tunnel closes: wait for all of them, then compare counts.
        api_tunnels = [t for t in tunnels if t["target"] == f"{api}:443"]
        connects = self.fw.squid.wait_for_log(lambda e: e["url"] == f"{api}:443", count=len(api_tunnels), timeout=15)
        self.assertEqual(len(connects), len(api_tunnels), "each of the CLI's own CONNECTs reached Squid once")
        self.assert_no_secret_anywhere(r)


class Denial(E2E):
    allow = [TENANT, f"api.{TENANT}", f"copilot-telemetry-service.{TENANT}"]  # no copilot-api

    def test_a_host_missing_from_the_allowlist_fails_fast_and_the_trace_says_why(self):
        start = time.monotonic()
        r = self.fw.run_cli(trace=self.trace)
        elapsed = time.monotonic() - start
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(elapsed, 60, "a denial must not hang the CLI")
        denied = [t for t in self.events("tunnel") if t["target"] == f"copilot-api.{self.fw.tenant}:443"]
        self.assertTrue(denied)
        for t in denied:
            self.assertEqual((t["result"], t["status"], t["squid_error"], t["errno"]),
                             ("failed", 403, "ERR_ACCESS_DENIED 0", "ECONNREFUSED"))
        self.assertFalse([q for q in self.fw.tenant_requests() if q["host"] == f"copilot-api.{self.fw.tenant}"])
        self.assert_no_secret_anywhere(r)


class UnlistedTelemetryAndUpdateCheck(E2E):
    allow = [TENANT, f"api.{TENANT}", f"copilot-api.{TENANT}"]  # no telemetry, no api.github.com

    def test_the_prompt_still_succeeds_and_each_refusal_is_traced(self):
        r = self.fw.run_cli(reduced=False, trace=self.trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello from the fake tenant", r.stdout)
        refused = {t["target"] for t in self.events("tunnel") if t["result"] == "failed"}
        self.assertIn("api.github.com:443", refused)
        self.assertIn(f"copilot-telemetry-service.{self.fw.tenant}:443", refused)
        self.assert_no_secret_anywhere(r)


if __name__ == "__main__":
    unittest.main()
