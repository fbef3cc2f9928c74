"""No hook blocks without a bound or ignores a signal the application relies on: while the shim's
CONNECT handshake is in progress, an application gets what a kernel connect would give it. A
signal interrupts a blocking connect (EINTR; restarted after an SA_RESTART handler) and the
handshake goes on; a handler may siglongjmp() out of it and the fd still closes; another thread
closes the fd at once and the connect fails; SO_SNDTIMEO ends the connect with the kernel's
errno; a process that cannot start the pump thread still fails a silent proxy by the deadline;
and shutdown(SHUT_WR) right after connecting (Node's socket.end()) no longer overtakes the bytes
the shim holds until the proxy's 200.

The proxy of the C cases holds its reply until the test (or the client) opens its gate: until
then it is silent. AWF_SHIM_TIMEOUT_MS is 20 s there; "promptly" means under half of that, a hang
guard rather than a timing assertion."""
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import net
from harness import PROGRAMS, TempDirTest, base_env, read_trace, run, runtime, shim_env
from squid import Squid

CLIENT = os.path.join(PROGRAMS, "handshake_client")
DOMAIN = "blocking.test"
HOST = f"ok.{DOMAIN}"
RECORD_PORT, TLS_RECORD_PORT = 7002, 7443
SQUID_PORT = 3132
TIMEOUT_MS = 20000
PROMPT_MS = TIMEOUT_MS / 2
W = CA = SQUID = RECORDERS = None
_stack = []


class RecordingUpstream:
    """An upstream of the test's own on UPSTREAM_IP:port (TLS with the test CA's certificate when
    `tls`): it records what each connection sent until the end of its stream (a FIN; with TLS,
    close_notify or a FIN) in `seen`, then closes it."""

    def __init__(self, port, tls=False):
        self.port, self.seen = port, []
        self.context = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(os.path.join(W, "ca", "server.pem"), os.path.join(W, "ca", "server.key"))

    def __enter__(self):
        self.sock = socket.create_server((net.UPSTREAM_IP, self.port))
        threading.Thread(target=self.serve, daemon=True).start()
        return self

    def __exit__(self, *a):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.sock.close()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.record, args=(conn,), daemon=True).start()

    def record(self, conn):
        got = b""
        try:
            conn.settimeout(20)
            if self.context:
                conn = self.context.wrap_socket(conn, server_side=True)
            while chunk := conn.recv(65536):
                got += chunk
        except (OSError, ssl.SSLError) as e:
            got += f"<{e}>".encode()
        finally:
            conn.close()
        self.seen.append(got)


def setUpModule():
    global W, CA, SQUID, RECORDERS
    W = tempfile.mkdtemp(prefix="awfshim-blocking-", dir="/tmp")
    os.chmod(W, 0o755)
    CA = net.make_ca(os.path.join(W, "ca"), [HOST])
    _stack.append(net.upstream(W, "echo", [f"{net.UPSTREAM_IP}:{net.ECHO_PORT}"], "echo").__enter__())
    RECORDERS = {tls: RecordingUpstream(port, tls).__enter__()
                 for tls, port in ((False, RECORD_PORT), (True, TLS_RECORD_PORT))}
    _stack.extend(RECORDERS.values())
    SQUID = Squid(os.path.join(W, "squid"), port=SQUID_PORT, allow=[f".{DOMAIN}"], hosts={HOST: net.UPSTREAM_IP},
                  extra_ports=[RECORD_PORT, TLS_RECORD_PORT]).start()


def tearDownModule():
    SQUID.stop(fast=True)
    for p in reversed(_stack):
        p.__exit__(None, None, None)
    shutil.rmtree(W, ignore_errors=True)


class HandshakeTest(TempDirTest):
    """Each test has a proxy of its own whose reply waits for the file self.gate."""

    def setUp(self):
        super().setUp()
        self.proxy = net.gated_connect_proxy(self)
        self.trace = self.path("trace.jsonl")

    def env(self, trace=None, **extra):
        self.trace = self.path(trace or "trace.jsonl")
        settings = dict(AWF_SHIM="1", AWF_SHIM_PROXY=f"http://127.0.0.1:{self.proxy.ports[0]}",
                        AWF_SHIM_ROUTE=f"*.{DOMAIN}", AWF_SHIM_TRACE=self.trace, AWF_SHIM_TIMEOUT_MS=str(TIMEOUT_MS))
        settings.update(extra)
        return shim_env(**settings)

    def client(self, mode, *flags, env=None, host=HOST, port=net.ECHO_PORT, guard=60):
        """The client's JSON line; a client still running after `guard` seconds fails the test."""
        try:
            r = run([CLIENT, mode, host, str(port), *flags], env=env if env is not None else self.env(), timeout=guard)
        except subprocess.TimeoutExpired as e:
            progress = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr
            self.fail(f"{mode}: still running after {guard} s (hung). Its progress:\n{progress}")
        self.assertTrue(r.stdout.strip(), r.stderr)
        return json.loads(r.stdout)

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]


class Signals(HandshakeTest):
    def test_a_signal_interrupts_a_blocking_connect_and_the_handshake_goes_on(self):
        """SIGALRM (no SA_RESTART) 1 s into a blocking connect to the silent proxy: EINTR at once,
        as the kernel's connect says it. The handshake goes on: with the gate open, connect()
        again waits for it and succeeds, a third says EISCONN, and the bytes flow."""
        out = self.client("interrupt", "--gate", self.gate)
        self.assertEqual(out["first"], "EINTR", out)
        self.assertLess(out["first_ms"], PROMPT_MS, out)
        self.assertEqual((out["again"], out["third"], out["echo"]), ("ok", "EISCONN", True), out)
        self.assertEqual([(t["result"], t["status"]) for t in self.events("tunnel")], [("open", 200)])

    def test_after_an_sa_restart_handler_the_connect_goes_on_waiting(self):
        """The kernel restarts a connect interrupted by a handler installed with SA_RESTART: the
        application never sees EINTR. The handler opens the gate; the one connect succeeds."""
        out = self.client("interrupt", "--restart", "--gate", self.gate)
        self.assertEqual((out["first"], out["echo"]), ("ok", True), out)

    def test_siglongjmp_out_of_a_blocking_connect_leaves_the_fd_closable(self):
        """wget's connect timeout: alarm() and a handler that siglongjmp()s out of connect. The
        shim holds no lock and no state of the thread's across the wait, so close() returns, and
        the thread's next connect is routed like the first (a leaked "inside the shim" mark would
        have sent it straight to the synthetic address)."""
        out = self.client("longjmp")
        self.assertEqual((out["jumped"], out["close"], out["after"]), (True, "ok", "EINPROGRESS"), out)
        self.assertLess(out["close_ms"], PROMPT_MS, out)
        self.assertEqual([e["decision"] for e in self.events("connect")], ["tunnel", "tunnel"])


class Threads(HandshakeTest):
    def test_close_from_another_thread_ends_the_blocking_connect(self):
        """The connect waits without the connection's lock: close() from another thread returns
        at once, and the connect, woken, fails with EBADF instead of waiting for the deadline."""
        out = self.client("close-thread")
        self.assertEqual(out["close"], "ok", out)
        self.assertLess(out["close_ms"], PROMPT_MS, out)
        self.assertEqual(out["connect"], "EBADF", out)
        self.assertLess(out["connect_ms"], PROMPT_MS, out)
        self.assertEqual(self.events("tunnel"), [], "the tunnel neither opened nor failed: it was abandoned")
        self.assertEqual([c["kind"] for c in self.events("close")], ["tunnel"])


class FullBacklog:
    """A loopback listener that never accepts, with its queue full: the kernel drops every further
    SYN, so a plain connect to it waits as a connect through the silent proxy does."""

    def __enter__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.filler = socket.socket()
        self.filler.setblocking(False)
        self.filler.connect_ex(("127.0.0.1", self.port))
        if not select.select([], [self.filler], [], 10)[1]:
            raise RuntimeError("the filler connection never completed")
        return self

    def __exit__(self, *a):
        self.filler.close()
        self.listener.close()


class SendTimeout(HandshakeTest):
    def test_so_sndtimeo_bounds_a_blocking_connect_as_in_the_kernel(self):
        """SO_SNDTIMEO of 500 ms, far below AWF_SHIM_TIMEOUT_MS: the connect returns after it with
        the kernel's errno (EINPROGRESS), and a second one, after another 500 ms, with the
        kernel's EALREADY — both as measured on a plain connect that gets no SYN-ACK."""
        with FullBacklog() as backlog:
            kernel = self.client("sndtimeo", "--sndtimeo-ms", "500", env=base_env(), host="127.0.0.1",
                                 port=backlog.port)
        self.assertEqual((kernel["first"], kernel["again"]), ("EINPROGRESS", "EALREADY"), kernel)
        out = self.client("sndtimeo", "--sndtimeo-ms", "500")
        self.assertEqual((out["first"], out["again"]), (kernel["first"], kernel["again"]), out)
        for key in ("first_ms", "again_ms"):
            self.assertGreaterEqual(out[key], 450, out)
            self.assertLess(out[key], PROMPT_MS, out)
        self.assertEqual(self.events("tunnel"), [], "the handshake was still going on")


class WithoutThePump(HandshakeTest):
    def test_a_silent_proxy_still_fails_by_the_deadline(self):
        """A seccomp filter refuses the pump its thread, or its epoll instance. A non-blocking
        connect behind the silent proxy, driven by a poll loop that never wakes on its own, still
        ends in ETIMEDOUT by AWF_SHIM_TIMEOUT_MS (2 s here), and the trace says why there is no
        pump."""
        for what, message in (("threads", "cannot start the pump thread"),
                              ("epoll", "cannot create the pump's epoll instance")):
            with self.subTest(deny=what):
                out = self.client("no-pump", "--deny", what, env=self.env(f"{what}.jsonl", AWF_SHIM_TIMEOUT_MS="2000"))
                self.assertNotIn("stalled", out, out)
                self.assertEqual(out.get("failed"), "ETIMEDOUT", out)
                self.assertLess(out["ms"], PROMPT_MS, out)
                errors = [(e["where"], e["message"].split(":")[0]) for e in self.events("error")]
                self.assertEqual(errors, [("pump", message)])
                self.assertEqual([(t["result"], t["errno"]) for t in self.events("tunnel")], [("failed", "ETIMEDOUT")])


class ShutdownDuringTheHandshake(HandshakeTest):
    def test_shutdown_waits_for_the_held_bytes(self):
        """Non-blocking: connected (to the proxy), "PING\\n" written (held until the 200), then
        shutdown(SHUT_WR), all while the proxy is silent. shutdown() succeeds, a send() after it
        fails with EPIPE, the proxy sees neither bytes nor FIN before its 200, and the upstream
        gets PING and then the end of the stream: it echoes PING and closes."""
        out = self.client("shutdown", "--gate", self.gate)
        self.assertEqual(out, {"shutdown": "ok", "send_after": "EPIPE", "received": "PING", "end": "eof"})
        log = net.proxy_log(self.proxy.log)
        self.assertEqual([(e["status"], e["early_bytes"], e.get("error")) for e in log], [(200, 0, None)])


class NodeEndRightAfterConnect(TempDirTest):
    """Node 24 writes a request and calls socket.end() in its 'connect' handler (the TCP connection
    is up, the proxy's 200 not yet in), through the real Squid: the upstream gets the request,
    then the end of the stream. (Squid does not keep a half-closed tunnel open, so what comes
    back after the client's FIN is not looked at.) With TLS, 'connect' is the TCP connection too,
    but Node holds the request and the end until its handshake is done: a guard."""

    def end_right_after_connect(self, connect, tls):
        trace = self.path("trace.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=SQUID.proxy_url, AWF_SHIM_ROUTE=f"*.{DOMAIN}",
                       AWF_SHIM_TRACE=trace, NODE_EXTRA_CA_CERTS=CA)
        code = (f"const s = {connect};"
                "s.on('connect', () => { s.write('REQUEST\\n'); s.end(); });"
                "s.resume();"
                "s.on('error', e => { console.error(e.code || e.message); process.exitCode = 1; });")
        before = len(RECORDERS[tls].seen)
        r = run([runtime("node-24"), "-e", code], env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(wait_for(lambda: RECORDERS[tls].seen[before:], "the upstream's connection"), [b"REQUEST\n"])
        events = read_trace(trace)
        self.assertEqual([(e["result"], e["status"]) for e in events if e["ev"] == "tunnel"], [("open", 200)])

    def test_net_connect(self):
        self.end_right_after_connect(f"require('net').connect({RECORD_PORT}, '{HOST}')", tls=False)

    def test_tls_connect(self):
        self.end_right_after_connect(f"require('tls').connect({{port: {TLS_RECORD_PORT}, host: '{HOST}'}})", tls=True)


def wait_for(predicate, what, guard=20.0):
    """Polls until predicate() returns something true and returns it (a hang guard)."""
    deadline = time.monotonic() + guard
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {guard:g} s: {what}")
        time.sleep(0.05)
    return value


if __name__ == "__main__":
    unittest.main()
