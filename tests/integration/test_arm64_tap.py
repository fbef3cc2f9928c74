"""The TLS tap on aarch64, under qemu-user in the arm64 root (tests/integration/arm64.py), with the
shim's aarch64 build preloaded: the arm64 Node.js 24 calls the OpenSSL inside its own executable,
which the engine patches with the aarch64 relocator (shim/platform/code_patch_aarch64.cc) — a `b` at
each entry, the relocated first instruction in a slot page below the executable — so that every
request becomes an `http` event, as on x86-64.

The x86-64 tests' own bodies run here, their clients in the root: test_tap's Node keep-alive test
(three requests on one connection, the first written from inside SSL_read) with the arm64 Node
through a native Squid; test_tap_node's Copilot CLI 1.0.6 (JavaScript) test, its CLI on the arm64
Node against the fake GHE.com tenant (tests/e2e/firewall.py). The test programs patchable_ssl and
short_ssl of the aarch64 build show what is patched and what is refused, and why.

The default run (scripts/test) runs one case, NodeTap.test_keep_alive_requests_are_http_events
(~2 s under qemu here, Squid's start included): the patch working in a real arm64 Node is what
the rest rests on. AWF_TEST_ARM64=full (scripts/test --arch aarch64) runs every test here. Nothing
here installs or builds: a missing root, runtime or aarch64 build fails at once, naming what to
run."""
import os
import tempfile
import unittest

import arm64
import net
import test_tap
import test_tap_node
import test_tap_safety
from firewall import Firewall
from harness import SANITIZER, read_trace, runtime

FULL = os.environ.get("AWF_TEST_ARM64") == "full"
full_suite = unittest.skipUnless(FULL, "the whole arm64 suite runs under scripts/test --arch aarch64")
# As test_arm64: the sanitizer build is x86-64, and nothing here runs it.
not_under_sanitizer = unittest.skipIf(SANITIZER, "runs arm64 programs under qemu-user against the aarch64 build; "
                                                 "the sanitizer build is x86-64")

PATCHABLE = os.path.join(arm64.PROGRAMS_AARCH64, "patchable_ssl")
SHORT_SSL = os.path.join(arm64.PROGRAMS_AARCH64, "short_ssl")
FIXTURES = arm64.Fixtures("awfshim-arm64tap-", [net.API])


def setUpModule():
    if SANITIZER:
        return
    FIXTURES.start()


def tearDownModule():
    FIXTURES.stop()


class InRoot(unittest.TestCase):
    """A program in the root under the aarch64 front, its trace in this test's own directory."""

    def setUp(self):
        arm64.aarch64_build()
        self.dir = tempfile.mkdtemp(prefix="t-", dir=FIXTURES.dir)
        self.trace = os.path.join(self.dir, "trace.jsonl")

    def env(self, **extra):
        return arm64.shim_env(self.dir, self.trace, AWF_SHIM_PROXY=FIXTURES.squid.proxy_url, GH_HOST=net.TENANT, **extra)

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]

    def run_in_root(self, argv, env=None):
        return arm64.run_in_root(argv, env=env or self.env(), binds=[FIXTURES.dir])


@not_under_sanitizer
class NodeTap(InRoot):
    NODE_GETS = test_tap.Tap.NODE_GETS
    tap_events = test_tap.Tap.tap_events
    http_events = test_tap.Tap.http_events

    def setUp(self):
        super().setUp()
        self.squid_mark = len(FIXTURES.squid.settled_log())

    def node(self, script, *args, **env):
        """test_tap.Tap.node, with the arm64 Node in the root."""
        node = runtime("node-24-arm64")
        self.assertEqual(arm64.elf_machine(node), arm64.EM_AARCH64)
        r = self.run_in_root([node, "-e", script, *args], self.env(NODE_EXTRA_CA_CERTS=FIXTURES.ca, **env))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r.stdout

    def test_keep_alive_requests_are_http_events(self):
        # test_tap's: the tap patched all five functions, and each of three requests on one
        # keep-alive connection is an `http` event, the first too (written inside SSL_read).
        test_tap.Tap.test_node_static_openssl_is_patched_and_sees_the_first_request(self)
        self.assertEqual([(e["method"], e["url"], e["status"], e["squid_status"])
                          for e in FIXTURES.squid.settled_log()[self.squid_mark:]],
                         [("CONNECT", f"{net.API}:443", 200, "TCP_TUNNEL")])

    @full_suite
    def test_tap_off_patches_nothing(self):
        test_tap.Tap.test_node_tap_off_patches_nothing(self)


@not_under_sanitizer
@full_suite
class Programs(InRoot):
    """The aarch64 builds of the test programs that export their own OpenSSL, as Node does."""

    def test_patchable_functions_are_patched_and_traced(self):
        arm64.aarch64_build(PATCHABLE)
        r = self.run_in_root([PATCHABLE, "exchange"])
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, f"{test_tap_safety.EXCHANGED} SSL_read-entry=jmp\n", ""))
        [tap] = self.events("tap")
        self.assertEqual((tap["outcome"], tap["functions"]),
                         ("patched", "SSL_write,SSL_write_ex,SSL_read,SSL_read_ex,SSL_free"))
        self.assertEqual([(e["method"], e["sni"], e["path"], e["status"]) for e in self.events("http")],
                         [("GET", "tap.test", "/patched", 200)])

    def test_an_unpatchable_executable_runs_untouched_and_the_trace_says_why(self):
        arm64.aarch64_build(SHORT_SSL)
        r = self.run_in_root([SHORT_SSL])
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "SSL_write=0 SSL_read-entry=own lookup=0\n", ""))
        [tap] = self.events("tap")
        self.assertEqual((tap["outcome"], tap["reason"]), ("refused", test_tap.SHORT_SSL_REFUSAL["aarch64"]))


class FirewallInRoot:
    """A tests/e2e/firewall.Firewall whose run_cli runs the CLI in the arm64 root under the aarch64
    front: the argv the caller gives, with the arm64 Node.js 24 in place of the x86-64 one (Copilot
    CLI 1.0.6 is JavaScript), and firewall's environment and flags."""

    def __init__(self, fw):
        self.fw = fw

    def __getattr__(self, name):
        return getattr(self.fw, name)

    def run_cli(self, prompt="say hi", reduced=True, trace=None, timeout=900, cli=None):
        x86_node, arm64_node = runtime("node-24"), runtime("node-24-arm64")
        argv = [arm64_node if a == x86_node else a for a in self.fw.cli_argv(prompt, reduced, cli)]
        if argv[0] != arm64_node:
            raise AssertionError(f"not a CLI on Node.js 24: {cli}")
        home, workdir = self.fw.fresh_dirs()
        env = arm64.shim_env(home, trace, AWF_SHIM_PROXY=self.fw.squid.proxy_url, **self.fw.cli_env())
        return arm64.run_in_root(argv, env=env, binds=[self.fw.work], cwd=workdir, timeout=timeout)


@not_under_sanitizer
@full_suite
class TapOnCopilot(unittest.TestCase):
    events = test_tap_node.TapOnCopilot.events
    assert_every_process_was_patched = test_tap_node.TapOnCopilot.assert_every_process_was_patched
    assert_no_secret = test_tap_node.TapOnCopilot.assert_no_secret

    def setUp(self):
        arm64.aarch64_build()
        self.dir = tempfile.mkdtemp(prefix="e2e-tap-", dir=FIXTURES.dir)
        self.fw = FirewallInRoot(Firewall(self.dir).__enter__())
        self.addCleanup(self.fw.__exit__, None, None, None)
        self.trace = os.path.join(self.dir, "trace.jsonl")

    def test_copilot_1_0_6_on_arm64_node_every_request_is_traced(self):
        # test_tap_node's: GET /copilot_internal/user 200 and the streamed POST /chat/completions
        # are `http` events, every request the tenant saw is in the trace, no secret anywhere.
        test_tap_node.TapOnCopilot.test_copilot_1_0_6_on_node24_every_request_is_traced(self)


if __name__ == "__main__":
    unittest.main()
