"""The TLS tap on the real Copilot CLI: 1.0.6 runs as JavaScript on Node.js 24, whose executable
calls its own OpenSSL — the tap patches it and sees every request; 1.0.102 makes its requests
through rustls in a Rust addon — its executable's OpenSSL gets patched all the same, but carries
none of them, so the trace has connections and no `http` events."""
import os
import shutil
import tempfile
import unittest

from firewall import TOKEN, Firewall, install_copilot, install_copilot_on_node24
from harness import read_trace

PATCHED = "SSL_write,SSL_write_ex,SSL_read,SSL_read_ex,SSL_free"


class TapOnCopilot(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="awfshim-e2e-tap-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.fw = Firewall(self.dir, copilot=install_copilot()).__enter__()
        self.addCleanup(self.fw.__exit__, None, None, None)
        self.trace = os.path.join(self.dir, "trace.jsonl")

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]

    def assert_every_process_was_patched(self):
        taps = self.events("tap")
        self.assertTrue(taps)
        for t in taps:
            self.assertEqual((t["outcome"], t["functions"]), ("patched", PATCHED), t)

    def assert_no_secret(self, result):
        for text in (open(self.trace).read(), result.stdout, result.stderr):
            self.assertNotIn(TOKEN[len("github_pat_"):], text)

    def test_copilot_1_0_6_on_node24_every_request_is_traced(self):
        # 1.0.6 predates the flags that quiet telemetry and the update check; both go through too.
        r = self.fw.run_cli(trace=self.trace, cli=install_copilot_on_node24(), reduced=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello from the fake tenant", r.stdout)
        self.assert_every_process_was_patched()
        api, chat_host = f"api.{self.fw.tenant}", f"copilot-api.{self.fw.tenant}"
        http = self.events("http")
        user = [e for e in http if (e["method"], e["host"], e["path"]) == ("GET", api, "/copilot_internal/user")]
        self.assertTrue(user and all(e["status"] == 200 for e in user), http)
        [chat] = [e for e in http if (e["method"], e["host"], e["path"]) == ("POST", chat_host, "/chat/completions")]
        self.assertEqual((chat["status"], chat["content_type"]), (200, "text/event-stream"))
        self.assertEqual((chat["request_summary"]["model"], chat["request_summary"]["stream"]), ("gpt-5-mini", True))
        # Every request the tenant saw is in the trace: the tap misses no connection's first one.
        seen = {(e["host"], e["path"].split("?")[0]) for e in http}
        for q in self.fw.tenant_requests():
            self.assertIn((q["host"], q["path"].split("?")[0]), seen)
        self.assert_no_secret(r)

    def test_copilot_1_0_102_works_with_the_tap_on_and_has_no_http_events(self):
        r = self.fw.run_cli(trace=self.trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Hello from the fake tenant", r.stdout)
        self.assert_every_process_was_patched()
        self.assertEqual(self.events("http"), [])
        self.assertTrue(any(t["target"] == f"copilot-api.{self.fw.tenant}:443" and t["status"] == 200
                            for t in self.events("tunnel")))
        self.assert_no_secret(r)


if __name__ == "__main__":
    unittest.main()
