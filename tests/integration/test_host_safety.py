"""The shim never breaks, hangs or bypasses the program it is loaded into: the loader's locks, two
OpenSSL copies in one process, and a routed host never reached directly when the engine cannot be
loaded. Each case is a real program under the front (C programs in programs/, curl)."""
import json
import os
import shutil
import socket
import subprocess
import threading
import unittest

import net
from harness import ENGINE, PROGRAMS, PYTHON, TempDirTest, base_env, front_preload, read_trace, run, shim_env

TWO_OPENSSL = os.path.join(PROGRAMS, "two_openssl")
FAKESSL_USER = os.path.join(PROGRAMS, "fakessl_user.so")
LOADER_RACE = os.path.join(PROGRAMS, "loader_race")
ODD_SENDS = os.path.join(PROGRAMS, "odd_sends")
GETENV_HOOK = os.path.join(PROGRAMS, "getenv_hook.so")
# What two_openssl prints when every call reached the copy its caller is linked against: the
# system's libssl refusing to write before a handshake, libfakessl's made-up answers, the system's.
OWN_COPY = "system ok\nwrite=2222 read=3333 write_ex=1/4445 read_ex=1/5556 freed=1\nsystem ok\n"


class TwoOpenSslCopies(TempDirTest):
    """A module with its own libssl (as a Python wheel bundles one) beside one linked against the
    system's (as Python's _ssl), both loaded RTLD_LOCAL: the front's SSL_* definitions capture the
    calls of both, and must hand each to the copy its caller is linked against — inert or active,
    tap on or off. Before, every call went to the copy found first: a call that returns 2222
    returned -1 (or crashed) with the front, AWF_SHIM unset."""

    def check(self, env):
        r = run([TWO_OPENSSL, PROGRAMS], env=env)
        self.assertEqual((r.returncode, r.stdout), (0, OWN_COPY), r.stderr)

    def test_without_the_front(self):
        self.check(base_env())

    def test_inert(self):
        self.check(shim_env())

    def test_active_with_the_tap(self):
        trace = self.path("trace.jsonl")
        self.check(shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", AWF_SHIM_TRACE=trace))
        # The engine loaded (its init event) and took nothing of the foreign copy for plaintext.
        events = read_trace(trace)
        self.assertEqual([e["ev"] for e in events if e["ev"] in ("init", "http")], ["init"], events)

    def test_active_tap_off(self):
        self.check(shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", AWF_SHIM_TAP="off"))


class LoaderLocks(TempDirTest):
    """The front's symbol search (a library loaded RTLD_LOCAL is outside RTLD_NEXT's reach) while
    another thread loads and unloads libraries. It called dlopen inside dl_iterate_phdr's callback,
    inverting the loader's lock order: this loop hung 53-81 times in 200-300 runs."""

    RUNS = 300

    def test_first_ssl_call_while_another_thread_loads_libraries(self):
        env = shim_env()  # inert: the search happens all the same
        hung, failed = 0, []
        for _ in range(self.RUNS):
            try:
                r = subprocess.run([LOADER_RACE, FAKESSL_USER], env=env, capture_output=True, text=True, timeout=10)
            except subprocess.TimeoutExpired:
                hung += 1
                continue
            if (r.returncode, r.stdout) != (0, "ok\n"):
                failed.append((r.returncode, r.stdout, r.stderr[-500:]))
        self.assertEqual((hung, failed), (0, []), f"of {self.RUNS} runs")


class Listener:
    """Accepts on addr:port and counts connections, so a test can see whether one arrived."""

    def __init__(self, addr, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    def close(self):
        self.sock.close()


class EngineCannotLoad(TempDirTest):
    """Without its engine the front does not know the routes: it refuses every TCP connection but to
    loopback and the proxy, says so once on stderr and in the trace. Before, it printed "running
    without the shim" and curl reached the host directly."""

    OUTSIDE = "192.0.2.77"  # TEST-NET-1, put on this namespace's loopback so a direct connect would work

    @classmethod
    def setUpClass(cls):
        subprocess.run(["ip", "addr", "add", f"{cls.OUTSIDE}/32", "dev", "lo"], check=True)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["ip", "addr", "del", f"{cls.OUTSIDE}/32", "dev", "lo"], check=False)

    def setUp(self):
        super().setUp()
        self.outside = Listener(self.OUTSIDE)
        self.proxy = Listener("127.0.0.1")
        self.addCleanup(self.outside.close)
        self.addCleanup(self.proxy.close)

    def engines(self):
        """(what, path) of engines that cannot load."""
        truncated = self.path("truncated.so")
        with open(ENGINE, "rb") as src, open(truncated, "wb") as dst:
            dst.write(src.read(4096))
        other_arch = self.path("aarch64.so")
        shutil.copy(ENGINE, other_arch)
        with open(other_arch, "r+b") as f:  # e_machine = EM_AARCH64
            f.seek(18)
            f.write((183).to_bytes(2, "little"))
        return [("missing", self.path("missing.so")), ("truncated", truncated), ("another architecture", other_arch)]

    def curl(self, env, host, port):
        return run(["curl", "-sS", "-m", "20", f"http://{host}:{port}/"], env=env)

    def test_control_a_direct_connection_would_get_through(self):
        r = self.curl(base_env(), self.OUTSIDE, self.outside.port)
        self.assertEqual((r.returncode, r.stdout), (0, "ok"), r.stderr)
        self.assertEqual(self.outside.accepted, 1)

    def test_nothing_but_loopback_and_the_proxy(self):
        for what, core in self.engines():
            with self.subTest(engine=what):
                trace = self.path(f"{what}.jsonl")
                env = shim_env(AWF_SHIM="1", AWF_SHIM_CORE=core, AWF_SHIM_TRACE=trace,
                               HTTPS_PROXY=f"http://127.0.0.1:{self.proxy.port}")
                r = self.curl(env, self.OUTSIDE, self.outside.port)
                self.assertEqual(r.returncode, 7, r.stderr)  # couldn't connect
                self.assertEqual(self.outside.accepted, 0)
                lines = r.stderr.strip().splitlines()
                self.assertRegex(lines[0], r"^awf-shim: (cannot load the engine|not an awf-shim engine): .*; failing "
                                           r"closed: TCP connections other than to loopback and the proxy are refused$")
                self.assertEqual(sum(line.startswith("awf-shim:") for line in lines), 1, r.stderr)
                [error] = read_trace(trace)
                self.assertEqual((error["ev"], error["where"]), ("error", "engine"))
                self.assertIn(os.path.basename(core), error["message"])
                # Loopback (here also the proxy) is left alone.
                before = self.proxy.accepted
                self.assertEqual(self.curl(env, "127.0.0.1", self.proxy.port).stdout, "ok")
                self.assertEqual(self.proxy.accepted, before + 1)

    def test_a_proxy_named_by_address_outside_loopback_is_still_reachable(self):
        proxy = Listener(self.OUTSIDE)
        self.addCleanup(proxy.close)
        env = shim_env(AWF_SHIM="1", AWF_SHIM_CORE=self.path("missing.so"),
                       AWF_SHIM_PROXY=f"http://user:pw@{self.OUTSIDE}:{proxy.port}")
        self.assertEqual(self.curl(env, self.OUTSIDE, proxy.port).stdout, "ok")
        self.assertEqual(proxy.accepted, 1)
        self.assertEqual(self.curl(env, self.OUTSIDE, self.outside.port).returncode, 7)
        self.assertEqual(self.outside.accepted, 0)

    def test_inert_and_out_of_scope_processes_are_untouched(self):
        for env in (shim_env(AWF_SHIM_CORE=self.path("missing.so")),
                    shim_env(AWF_SHIM="1", AWF_SHIM_ONLY="not-curl", AWF_SHIM_CORE=self.path("missing.so"))):
            r = self.curl(env, self.OUTSIDE, self.outside.port)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ok", ""))


def synthetic_addresses(host):
    """The shim's (IPv4, IPv6) synthetic addresses for a routed host, as a process under it sees them."""
    code = ("import socket, sys; print(' '.join(socket.getaddrinfo(sys.argv[1], 443, f, socket.SOCK_STREAM)[0][4][0]"
            " for f in (socket.AF_INET, socket.AF_INET6)))")
    r = run([PYTHON, "-c", code, host], env=shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", GH_HOST=net.TENANT))
    assert r.returncode == 0, r.stderr
    v4, v6 = r.stdout.split()
    return v4, v6


class RoutedHostNeverDirect(TempDirTest):
    """Paths to a routed host other than a plain connect: each must be tunnelled or refused, never
    sent directly. The synthetic addresses are put on loopback with listeners (TCP and UDP), so that
    anything sent directly would arrive and be seen. Before, all four got through."""

    @classmethod
    def setUpClass(cls):
        cls.v4, cls.v6 = synthetic_addresses(net.API)
        cls.trap = net.DirectTrap([cls.v4, cls.v6], 443).__enter__()
        cls.udp = []
        for addr, family in ((cls.v4, socket.AF_INET), (cls.v6, socket.AF_INET6)):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((addr, 443))
            s.setblocking(False)
            cls.udp.append(s)

    @classmethod
    def tearDownClass(cls):
        for s in cls.udp:
            s.close()
        cls.trap.__exit__(None, None, None)

    def datagrams(self):
        got = []
        for s in self.udp:
            while True:
                try:
                    got.append(s.recv(100))
                except BlockingIOError:
                    break
        return got

    def odd_send(self, mode, addr):
        trace = self.path(f"{mode}-{addr}.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", GH_HOST=net.TENANT, AWF_SHIM_TRACE=trace)
        r = run([ODD_SENDS, mode, addr, "443", net.API], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        connects = [e for e in read_trace(trace) if e["ev"] == "connect"]
        return r.stdout.strip(), connects

    def assert_nothing_direct(self):
        self.assertEqual((self.trap.connections(), self.datagrams()), ([], []))

    def test_connect_with_a_24_byte_ipv6_address_is_tunnelled(self):
        out, connects = self.odd_send("connect24", self.v6)
        self.assertEqual(out, "ECONNREFUSED")  # the proxy (port 9) is not there
        self.assertEqual([(c["decision"], c["host"]) for c in connects], [("tunnel", net.API)])
        self.assert_nothing_direct()

    def test_datagrams_to_a_routed_host_are_refused(self):
        for mode, addr in (("udp-sendto", self.v4), ("udp-sendto", self.v6), ("udp-sendmmsg", self.v4)):
            with self.subTest(mode=mode, addr=addr):
                out, connects = self.odd_send(mode, addr)
                self.assertEqual(out, "ENETUNREACH")
                self.assertEqual([(c["decision"], c["reason"]) for c in connects],
                                 [("refuse", "a datagram to a routed destination: only TCP can be tunnelled")])
                self.assert_nothing_direct()

    def test_fast_open_through_sendmmsg_is_tunnelled(self):
        out, connects = self.odd_send("tfo-sendmmsg", self.v4)
        self.assertEqual(out, "ECONNREFUSED")
        self.assertEqual([(c["decision"], c["host"]) for c in connects], [("tunnel", net.API)])
        self.assert_nothing_direct()


class FrontReadsItsOwnEnvironment(TempDirTest):
    """The front decides whether it is on from the environment itself, not through whatever getenv
    comes first, and reads AWF_SHIM_ONLY the way people write lists."""

    CODE = "import socket; socket.getaddrinfo('localhost', 80)"

    def active(self, **env):
        trace = self.path("trace.jsonl")
        if os.path.exists(trace):
            os.unlink(trace)
        r = run([PYTHON, "-c", self.CODE], env={**shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9",
                                                          AWF_SHIM_TRACE=trace), **env})
        self.assertEqual(r.returncode, 0, r.stderr)
        return [e["ev"] for e in read_trace(trace)][:1] == ["init"]

    def test_a_getenv_hook_preloaded_first_does_not_switch_the_shim_off(self):
        # It answers NULL until its own constructor has run, which is after the front's.
        self.assertTrue(self.active(LD_PRELOAD=front_preload(GETENV_HOOK)))

    def test_only_list_with_blanks(self):
        self.assertTrue(self.active(AWF_SHIM_ONLY="curl, python3"))
        self.assertTrue(self.active(AWF_SHIM_ONLY=" python3 ,node"))
        self.assertFalse(self.active(AWF_SHIM_ONLY="curl, node"))


if __name__ == "__main__":
    unittest.main()
