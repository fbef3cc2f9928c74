"""The TLS tap's patching of an executable's own OpenSSL must never break the process it patches:
on a host that refuses to make modified code executable again (SELinux `execmod`, here a seccomp
filter), with a second thread already running, and across fork() while other threads are inside
the tap. patchable_ssl is a fake OpenSSL exported by a non-PIE executable, as Node's is; Node 24
itself runs under the same filter."""
import os
import platform
import unittest

import net
from harness import PROGRAMS, TempDirTest, read_trace, run, runtime, shim_env

PATCHABLE = os.path.join(PROGRAMS, "patchable_ssl")
SECCOMP_EXEC = os.path.join(PROGRAMS, "seccomp_exec")
EXCHANGED = "SSL_write=41 SSL_read=40"  # the request's and the canned response's lengths
# Node.js 24 for the machine the tests run on (both non-PIE, loaded at 0x400000). The aarch64
# tests run under qemu-user, which refuses seccomp filters: test_arm64_tap covers what can run there.
NODE_24 = {"x86_64": "node-24", "aarch64": "node-24-arm64"}.get(platform.machine(), "node-24")
W = CA = PROXY = None
_fixture = net.TlsUpstreamBehindProxy("awfshim-tapsafety-")


def setUpModule():
    global W, CA, PROXY
    _fixture.__enter__()
    W, CA, PROXY = _fixture.dir, _fixture.ca, _fixture.proxy


def tearDownModule():
    _fixture.__exit__(None, None, None)


@unittest.skipUnless(os.path.exists(PATCHABLE), f"the build has no {PATCHABLE}")
class TapSafety(TempDirTest):
    def run_shimmed(self, *argv, **extra):
        self.trace = self.path("trace.jsonl")
        if os.path.exists(self.trace):
            os.unlink(self.trace)
        env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=f"http://127.0.0.1:{PROXY.ports[0]}", GH_HOST=net.TENANT,
                       AWF_SHIM_TRACE=self.trace, **extra)
        return run(list(argv), env=env)

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]

    def under_seccomp(self, rules, *argv, **extra):
        return self.run_shimmed(SECCOMP_EXEC, rules, *argv, **extra)

    # Node 24's executable is non-PIE too: the filter covers its OpenSSL.
    NODE_GET = ("require('https').get(process.argv[1], (res) => "
                "{ res.resume(); res.on('end', () => console.log(res.statusCode)); });")

    def node_get(self, rules):
        r = self.under_seccomp(rules, runtime(NODE_24), "-e", self.NODE_GET, f"https://{net.API}/node",
                               NODE_EXTRA_CA_CERTS=CA)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "200\n", ""))
        [tap] = self.events("tap")
        return tap

    def test_node_makes_its_request_when_code_cannot_be_written(self):
        tap = self.node_get("mprotect-exec,proc-mem")
        self.assertEqual(tap["outcome"], "refused", tap)
        self.assertEqual(self.events("http"), [])
        self.assertEqual([t["target"] for t in self.events("tunnel")], [f"{net.API}:443"])

    def test_node_is_patched_through_proc_mem_where_mprotect_is_refused(self):
        self.assertEqual(self.node_get("mprotect-exec")["outcome"], "patched")
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in self.events("http")], [("GET", "/node", 200)])

    def test_refused_exec_permission_and_proc_mem_refuse_the_patch_and_the_program_runs(self):
        r = self.under_seccomp("mprotect-exec,proc-mem", PATCHABLE, "exchange")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, f"{EXCHANGED} SSL_read-entry=own\n")
        [tap] = self.events("tap")
        self.assertEqual(tap["outcome"], "refused", tap)
        self.assertEqual(tap["reason"], "/proc/self/mem at SSL_write: Input/output error; "
                                        "mprotect of SSL_write's page to writable+executable: Permission denied")
        self.assertEqual(self.events("http"), [])

    def test_code_is_written_through_proc_mem_where_mprotect_is_refused(self):
        r = self.under_seccomp("mprotect-exec", PATCHABLE, "exchange")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, f"{EXCHANGED} SSL_read-entry=jmp\n")
        [tap] = self.events("tap")
        self.assertEqual((tap["outcome"], tap["functions"]),
                         ("patched", "SSL_write,SSL_write_ex,SSL_read,SSL_read_ex,SSL_free"))
        [http] = self.events("http")
        self.assertEqual((http["method"], http["host"], http["sni"], http["path"], http["status"]),
                         ("GET", "tap.test", "tap.test", "/patched", 200))

    def test_without_proc_mem_the_pages_are_made_writable_for_the_copy(self):
        r = self.under_seccomp("proc-mem", PATCHABLE, "exchange")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, f"{EXCHANGED} SSL_read-entry=jmp\n")
        self.assertEqual(self.events("tap")[0]["outcome"], "patched")
        self.assertEqual([e["path"] for e in self.events("http")], ["/patched"])

    def test_a_thread_started_before_the_shim_refuses_the_patch(self):
        # libspinning_ssl's constructor runs before the front's and its thread is inside
        # SSL_write/SSL_read when the engine would patch them.
        for i in range(50):
            r = self.run_shimmed(os.path.join(PROGRAMS, "patchable_ssl_threaded"), "exchange")
            self.assertEqual((r.returncode, r.stderr), (0, ""), f"run {i}")
            self.assertEqual(r.stdout, f"{EXCHANGED} SSL_read-entry=own\nspinner calls: some\n", f"run {i}")
            [tap] = self.events("tap")
            self.assertEqual((tap["outcome"], tap["reason"]), ("refused", "the process already has 2 threads"))

    def test_fork_while_threads_are_inside_the_tap(self):
        # Four threads call the patched SSL_write/SSL_read/SSL_free on ever new SSL*s; each child
        # of 300 forks calls them on the SSL*s the threads were using. A lock held by a thread that
        # the child does not have would hang the child (killed after 5 s: hung=1).
        r = self.run_shimmed(PATCHABLE, "fork-stress", "300")
        self.assertEqual((r.stdout, r.stderr), ("forks=300 hung=0 failed=0\n", ""))
        self.assertEqual(r.returncode, 0)
        self.assertEqual(self.events("tap")[0]["outcome"], "patched")


if __name__ == "__main__":
    unittest.main()
