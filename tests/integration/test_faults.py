"""Fail closed and explain: every way the proxy can go wrong ends in a connection error for the
application and a trace that says why — never a direct connection, never a hang. Also: event
loops keep running while a slow proxy answers, and many threads with a fork in the middle; an
upstream that resets mid-stream, an application that gives up mid-handshake, and fork + exec
while a handshake is pending."""
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
import unittest

import net
from harness import PROGRAMS, PYTHON, TempDirTest, read_trace, run, runtime, shim_env
from squid import Squid

NETCLIENT = os.path.join(PROGRAMS, "netclient")
STORM = os.path.join(PROGRAMS, "connect_storm")
DOMAIN = "fault.test"
FAULTS = {  # host under DOMAIN -> the fixture proxy's fault mode
    "deny": "deny", "s502": "status502", "garbage": "garbage", "close": "close", "midhead": "close-mid-head",
    "huge": "huge-head", "slow": "slowloris", "delay": "delay=2", "ok": "none",
}
W = CA = PROXY = DIRECT = None
_stack = []


def setUpModule():
    global W, CA, PROXY, DIRECT
    W = tempfile.mkdtemp(prefix="awfshim-faults-", dir="/tmp")
    os.chmod(W, 0o755)
    CA = net.make_ca(os.path.join(W, "ca"), [f"{h}.{DOMAIN}" for h in FAULTS])
    tls = os.path.join(W, "ca")
    for name, listens, mode, tls_dir in [
        ("https", [f"{net.UPSTREAM_IP}:443"], "http", tls),
        ("echo", [f"{net.UPSTREAM_IP}:{net.ECHO_PORT}"], "echo", None),
        ("greeting", [f"{net.UPSTREAM_IP}:{net.GREETING_PORT}"], "greeting", None),
    ]:
        _stack.append(net.upstream(W, name, listens, mode, tls_dir, log=os.path.join(W, f"{name}.log")).__enter__())
    PROXY = net.connect_proxy(W, maps=[f"*={net.UPSTREAM_IP}"],
                              faults_for=[f"{h}.{DOMAIN}={m}" for h, m in FAULTS.items()]).__enter__()
    _stack.append(PROXY)
    # Where a shim that connected directly would go: the addresses its fake DNS gives each host.
    code = ("import socket, sys\n"
            "print(*{a[4][0] for h in sys.argv[1:] for a in socket.getaddrinfo(h, 0, type=socket.SOCK_STREAM)})")
    env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=f"http://127.0.0.1:{PROXY.ports[0]}", AWF_SHIM_ROUTE=f"*.{DOMAIN}")
    r = run([PYTHON, "-c", code, *(f"{h}.{DOMAIN}" for h in FAULTS)], env=env, check=True)
    DIRECT = net.DirectTrap(r.stdout.split(), net.ECHO_PORT).__enter__()
    _stack.append(DIRECT)


def tearDownModule():
    for p in reversed(_stack):
        p.__exit__(None, None, None)
    shutil.rmtree(W, ignore_errors=True)


def echo_connections():
    path = os.path.join(W, "echo.log")
    return len(open(path).readlines()) if os.path.exists(path) else 0


class FaultTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.direct_before = len(DIRECT.connections())

    def assert_nothing_went_direct(self, what):
        self.assertEqual(DIRECT.connections()[self.direct_before:], [], f"{what}: connected directly")

    def env(self, proxy=None, **extra):
        self.trace = self.path("trace.jsonl")
        return shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=proxy or f"http://127.0.0.1:{PROXY.ports[0]}",
                        AWF_SHIM_ROUTE=f"*.{DOMAIN}", AWF_SHIM_TRACE=self.trace, NODE_EXTRA_CA_CERTS=CA, **extra)

    def client(self, mode, host, env, *flags, port=net.ECHO_PORT):
        r = run([NETCLIENT, mode, host, str(port), *flags], env=env, timeout=60)
        self.assertTrue(r.stdout, r.stderr)
        return json.loads(r.stdout)

    def tunnel_events(self):
        return [e for e in read_trace(self.trace) if e["ev"] == "tunnel"]


class ProxyFaults(FaultTest):
    def assert_fails(self, host, errno_name, reason_part, status=None, proxy=None, **env_extra):
        before = echo_connections()
        for mode in ("blocking", "epoll"):
            out = self.client(mode, f"{host}.{DOMAIN}" if "." not in host else host, self.env(proxy, **env_extra))
            self.assert_nothing_went_direct(mode)
            self.assertFalse(out["ok"], f"{mode}: {out}")
            self.assertIn(errno_name, out["error"], f"{mode}: {out}")
        tunnels = self.tunnel_events()
        self.assertEqual(len(tunnels), 2, tunnels)
        for t in tunnels:
            self.assertEqual((t["result"], t["errno"]), ("failed", errno_name), t)
            self.assertIn(reason_part, t["reason"])
            if status:
                self.assertEqual(t["status"], status)
        self.assertEqual(echo_connections(), before, "the target was never reached")

    def test_403_names_squids_error(self):
        self.assert_fails("deny", "ECONNREFUSED", "refused CONNECT: 403", status=403)
        self.assertEqual(self.tunnel_events()[0]["squid_error"], "ERR_ACCESS_DENIED 0")

    def test_502(self):
        self.assert_fails("s502", "ECONNREFUSED", "refused CONNECT: 502", status=502)

    def test_garbage(self):
        self.assert_fails("garbage", "ECONNRESET", "unusable proxy reply")

    def test_close_without_answer(self):
        self.assert_fails("close", "ECONNRESET", "closed the connection before answering")

    def test_close_mid_head(self):
        self.assert_fails("midhead", "ECONNRESET", "closed the connection before answering")

    def test_oversized_head(self):
        self.assert_fails("huge", "ECONNRESET", "unusable proxy reply")

    def test_slow_proxy_hits_the_timeout(self):
        self.assert_fails("slow", "ETIMEDOUT", "no answer from the proxy", AWF_SHIM_TIMEOUT_MS="1500")

    def test_proxy_not_listening(self):
        self.assert_fails("ok", "ECONNREFUSED", "cannot reach the proxy", proxy="http://127.0.0.1:9")

    def test_bad_configuration_refuses_routed_connections(self):
        before = echo_connections()
        out = self.client("blocking", f"ok.{DOMAIN}", self.env(AWF_SHIM_TIMEOUT_MS="never"))
        self.assert_nothing_went_direct("blocking")
        self.assertFalse(out["ok"])
        self.assertIn("ECONNREFUSED", out["error"])
        connect = [e for e in read_trace(self.trace) if e["ev"] == "connect"][0]
        self.assertEqual(connect["decision"], "refuse")
        self.assertEqual(echo_connections(), before)


class ProxyAuthentication(FaultTest):
    def test_credentials_from_the_proxy_url_are_sent_and_never_traced(self):
        with net.connect_proxy(self.dir, name="authproxy", maps=[f"*={net.UPSTREAM_IP}"], fault="auth",
                               auth="agent:s3cr3t-pw") as proxy:
            url = f"http://agent:s3cr3t-pw@127.0.0.1:{proxy.ports[0]}"
            self.assertTrue(self.client("blocking", f"ok.{DOMAIN}", self.env(url))["ok"])
            wrong = self.client("epoll", f"ok.{DOMAIN}", self.env(f"http://agent:nope@127.0.0.1:{proxy.ports[0]}"))
            self.assertFalse(wrong["ok"])
            self.assertIn("ECONNREFUSED", wrong["error"])
            log = net.proxy_log(proxy.log)
            self.assertEqual([(e["proxy_auth"], e["status"]) for e in log], [("Basic", 200), ("Basic", 407)])
        self.assertEqual(self.tunnel_events()[-1]["status"], 407)
        text = open(self.trace).read()
        self.assertNotIn("s3cr3t-pw", text)
        self.assertIn("http://agent:***@127.0.0.1", text)


class EventLoopsKeepRunning(FaultTest):
    """The proxy waits 2 s before its 200; a 10 ms timer in the client's own loop keeps firing."""

    def test_epoll_client_speaks_first(self):
        out = self.client("epoll", f"delay.{DOMAIN}", self.env(), "--ticks")
        self.assertTrue(out["ok"], out)
        self.assertGreaterEqual(out["ticks"], 100, out)

    def test_epoll_server_speaks_first(self):
        out = self.client("epoll", f"delay.{DOMAIN}", self.env(), "--ticks", "--server-first", port=net.GREETING_PORT)
        self.assertTrue(out["ok"], out)
        self.assertGreaterEqual(out["ticks"], 100, out)

    def test_node_set_interval(self):
        code = (f"let ticks = 0; const t = setInterval(() => ticks++, 10);"
                f"require('https').get('https://delay.{DOMAIN}/slow', r => {{ r.resume(); r.on('end', () => {{"
                " clearInterval(t); console.log(JSON.stringify({status: r.statusCode, ticks})); }); })"
                ".on('error', e => { console.error(e.message); process.exit(1); });")
        r = run([runtime("node-20"), "-e", code], env=self.env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["status"], 200)
        self.assertGreaterEqual(out["ticks"], 100, out)


class ManyThreads(TempDirTest):
    def test_32_threads_200_connects_each_with_a_fork(self):
        with Squid(self.path("squid"), port=3129, allow=[f".{DOMAIN}"], hosts={f"ok.{DOMAIN}": net.UPSTREAM_IP},
                   extra_ports=[net.ECHO_PORT]) as squid:
            env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=squid.proxy_url, AWF_SHIM_ROUTE=f"*.{DOMAIN}")
            r = run([STORM, f"ok.{DOMAIN}", net.UPSTREAM_IP, str(net.ECHO_PORT), "32", "200"], env=env, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            out = json.loads(r.stdout)
            self.assertEqual((out["failures"], out["child"]), (0, 0), out)
            self.assertEqual(out["fds_before"], out["fds_after"], out)


class FdLifetime(FaultTest):
    """State follows the fd through dup, bulk closes and dup2; the shim's own trace fd survives
    an application that closes everything."""

    def setUp(self):
        super().setUp()
        self.shim = self.env()

    def python(self, code):
        prelude = (f"import os, socket\n"
                   f"def echo(host):\n"
                   f"    s = socket.create_connection((host, {net.ECHO_PORT}), timeout=20)\n"
                   f"    s.sendall(b'PING\\n'); assert s.recv(5) == b'PING\\n'\n"
                   f"    return s\n")
        r = run(["/usr/bin/python3", "-c", prelude + code], env=self.shim, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_dup_shares_the_tunnel_until_the_last_close(self):
        self.python(f"s = echo('ok.{DOMAIN}')\n"
                    "t = socket.socket(fileno=os.dup(s.fileno())); t.settimeout(20)\n"
                    "s.close()\n"
                    "t.sendall(b'AGAIN\\n'); assert t.recv(6) == b'AGAIN\\n'\n"
                    "t.close()\n")
        closes = [e for e in read_trace(self.trace) if e["ev"] == "close"]
        self.assertEqual(len(closes), 1, closes)
        self.assertEqual(closes[0]["bytes_out"], 11)
        self.assertEqual(closes[0]["bytes_in"], 11)

    def test_trace_survives_closerange_and_dup2_onto_it(self):
        self.python(f"echo('ok.{DOMAIN}').close()\n"
                    "trace = [int(f) for f in os.listdir('/proc/self/fd')\n"
                    f"         if os.path.realpath('/proc/self/fd/' + f) == '{self.trace}']\n"
                    "assert len(trace) == 1, trace\n"
                    "os.closerange(3, 4096)\n"
                    f"echo('ok.{DOMAIN}').close()\n"
                    "null = os.open('/dev/null', os.O_WRONLY)\n"
                    "os.dup2(null, trace[0])\n"
                    f"echo('ok.{DOMAIN}').close()\n")
        tunnels = [e for e in read_trace(self.trace) if e["ev"] == "tunnel"]
        self.assertEqual(len(tunnels), 3, "every connection was traced")

    def test_dup2_over_a_tunnelled_fd_forgets_it(self):
        self.python(f"s = echo('ok.{DOMAIN}')\n"
                    "r, w = os.pipe()\n"
                    "os.dup2(r, s.fileno())\n"
                    "os.write(w, b'x'); assert os.read(s.fileno(), 1) == b'x'\n")
        closes = [e for e in read_trace(self.trace) if e["ev"] == "close"]
        self.assertEqual(len(closes), 1, closes)


class SocketFamiliesAndFastOpen(FaultTest):
    """IPv4 sockets reach an IPv6 proxy and IPv6-only sockets an IPv4 one (a socket of the proxy's
    family takes over the fd); MSG_FASTOPEN is routed like connect."""

    CODE = (
        "import socket, sys\n"
        "family = {'4': socket.AF_INET, '6': socket.AF_INET6}[sys.argv[1]]\n"
        f"addr = socket.getaddrinfo('ok.{DOMAIN}', {net.ECHO_PORT}, family, socket.SOCK_STREAM)[0][4]\n"
        "s = socket.socket(family, socket.SOCK_STREAM)\n"
        "s.settimeout(20)\n"
        "if sys.argv[2] == 'v6only': s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
        "if sys.argv[2] == 'fastopen':\n"
        "    s.sendto(b'PING\\n', socket.MSG_FASTOPEN, addr)\n"
        "else:\n"
        "    s.connect(addr); s.sendall(b'PING\\n')\n"
        "assert s.recv(5) == b'PING\\n'\n"
        "print(s.getpeername()[0] == addr[0])\n")

    def exchange(self, proxy, family, how):
        r = run(["/usr/bin/python3", "-c", self.CODE, family, how], env=self.env(proxy), timeout=60)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "True"), r.stderr)

    def test_ipv4_socket_through_an_ipv6_proxy(self):
        with net.connect_proxy(self.dir, name="v6proxy", listen="[::1]:0", maps=[f"*={net.UPSTREAM_IP}"]) as p:
            self.exchange(f"http://[::1]:{p.ports[0]}", "4", "plain")
            self.assertEqual(len(net.proxy_log(p.log)), 1)

    def test_ipv6_only_socket_through_an_ipv4_proxy(self):
        self.exchange(None, "6", "v6only")
        self.exchange(None, "6", "plain")

    def test_msg_fastopen_is_tunnelled(self):
        self.exchange(None, "4", "fastopen")
        self.assertEqual([e["decision"] for e in read_trace(self.trace) if e["ev"] == "connect"], ["tunnel"])


def wait_for(predicate, what, guard=20.0):
    """Polls until predicate() returns something true and returns it (a hang guard, not a timing
    assertion)."""
    deadline = time.monotonic() + guard
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            if not value:
                raise AssertionError(f"still waiting after {guard:g} s: {what}")
            return value
        time.sleep(0.05)


class ResettingUpstream:
    """An upstream of the test's own: every connection gets `size` bytes (byte i is i % 256),
    after the client's first line or, with server_first, at once; then, once the peer's kernel
    has acknowledged every one of them (so the reset cannot destroy them in flight), an RST
    (SO_LINGER 0 and close). `seen` records per connection the request and the bytes still
    unacknowledged at the reset."""

    def __init__(self, size, server_first=False):
        self.size, self.server_first, self.seen = size, server_first, []

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((net.UPSTREAM_IP, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.sock.close()
        self.thread.join(10)

    @staticmethod
    def unacked(conn):
        return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]

    def serve(self):
        payload = (bytes(range(256)) * (self.size // 256 + 1))[:self.size]
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            rec = {"request": b""}
            with conn:
                conn.settimeout(30)
                try:
                    while not self.server_first and not rec["request"].endswith(b"\n"):
                        chunk = conn.recv(64)
                        if not chunk:
                            break
                        rec["request"] += chunk
                    conn.sendall(payload)
                    deadline = time.monotonic() + 20
                    while self.unacked(conn) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    rec["unacked_at_reset"] = self.unacked(conn)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError as e:
                    rec["error"] = str(e)
            self.seen.append(rec)


class UpstreamResetsMidStream(FaultTest):
    """The tunnel is open; the upstream sends part of a response, then resets. What crosses a
    CONNECT proxy is its end of the tunnel, not the RST: the application gets every byte sent
    before the reset, then the proxy's FIN — EOF, the same through the fixture proxy and through
    Squid. No hang, the fd is released (close event; socket() gets the number back; the fd count
    is what it was)."""

    SIZE = 200_000  # not a multiple of any buffer size on the way

    def drain(self, proxy_url, upstream, *flags):
        outs = []
        for mode in ("blocking", "epoll"):
            out = self.client(mode, f"ok.{DOMAIN}", self.env(proxy_url), "--drain", *flags, port=upstream.port)
            self.assertEqual((out["received"], out["intact"], out["end"]), (self.SIZE, True, "eof"), f"{mode}: {out}")
            self.assertEqual(out["reused_fd"], out["fd"], f"{mode}: the fd number was not released: {out}")
            self.assertEqual(out["fds_before"], out["fds_after"], f"{mode}: fd leak: {out}")
            self.assertTrue(out["ok"], out)
            outs.append(out)
        self.assertEqual(len(upstream.seen), 2, upstream.seen)
        for rec in upstream.seen:
            self.assertEqual(rec, {"request": b"" if "--server-first" in flags else b"PING\n", "unacked_at_reset": 0})
        events = read_trace(self.trace)
        self.assertEqual([e["decision"] for e in events if e["ev"] == "connect"], ["tunnel", "tunnel"])
        self.assertEqual([e["result"] for e in events if e["ev"] == "tunnel"], ["open", "open"])
        closes = [e for e in events if e["ev"] == "close"]
        self.assertEqual([(c["fd"], c["kind"], c["host"], c["port"], c["bytes_in"], c["bytes_out"], "open_at_exit" in c)
                          for c in closes],
                         [(o["fd"], "tunnel", f"ok.{DOMAIN}", upstream.port, self.SIZE,
                           0 if "--server-first" in flags else 5, False) for o in outs])

    def test_fixture_proxy(self):
        with ResettingUpstream(self.SIZE) as upstream:
            self.drain(None, upstream)

    def test_fixture_proxy_reset_right_behind_the_200(self):
        """The upstream speaks first and resets at once: the bytes (and the FIN) may arrive with
        the proxy's reply head, before the shim has consumed it."""
        with ResettingUpstream(self.SIZE, server_first=True) as upstream:
            self.drain(None, upstream, "--server-first")

    def test_squid(self):
        with ResettingUpstream(self.SIZE) as upstream, \
                Squid(self.path("squid"), port=3130, allow=[f".{DOMAIN}"], hosts={f"ok.{DOMAIN}": net.UPSTREAM_IP},
                      extra_ports=[upstream.port]) as squid:
            self.drain(squid.proxy_url, upstream)


# Python that leaves `s` a non-blocking socket whose connect to ok.DOMAIN (`addr`) is pending.
PENDING_CONNECT = (
    f"addr = socket.getaddrinfo('ok.{DOMAIN}', {net.ECHO_PORT}, socket.AF_INET, socket.SOCK_STREAM)[0][4]\n"
    "s = socket.socket()\n"
    "s.setblocking(False)\n"
    "try:\n"
    "    s.connect(addr)\n"
    "except BlockingIOError:\n"
    "    pass\n")


class GatedProxyTest(FaultTest):
    """A proxy of the test's own that holds its reply to CONNECT until the test (or the client)
    creates the file self.gate."""

    def setUp(self):
        super().setUp()
        self.proxy = net.gated_connect_proxy(self)

    def proxy_url(self):
        return f"http://127.0.0.1:{self.proxy.ports[0]}"


class AbandonedHandshake(GatedProxyTest):
    """The application closes its socket while the proxy has not answered CONNECT yet. Nothing
    crashes, the proxy sees the connection closed, the trace has the connect and a close (there is
    no tunnel event: the tunnel neither opened nor failed), and the fd number is reused by a plain
    loopback connection that the shim leaves alone — also after the abandoned handshake's
    deadline has passed (AWF_SHIM_TIMEOUT_MS=1000, the client waits 1.5 s before checking)."""

    def abandon(self, *flags):
        before = echo_connections()
        env = self.env(self.proxy_url(), AWF_SHIM_TIMEOUT_MS="1000")
        r = run([NETCLIENT, "epoll", f"ok.{DOMAIN}", str(net.ECHO_PORT), *flags, "--settle-ms", "1500"],
                env=env, timeout=60)
        self.assert_nothing_went_direct("epoll")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        n = len(out["fds"])
        self.assertEqual((out["reused"], out["clean"]), (n, n), out)
        self.assertEqual(out["fds_before"], out["fds_after"], out)
        events = read_trace(self.trace)
        connects = [(e["fd"], e["decision"]) for e in events if e["ev"] == "connect"]
        self.assertEqual(connects, [c for fd in out["fds"] for c in ((fd, "tunnel"), (fd, "bypass"))])
        self.assertEqual([e for e in events if e["ev"] == "tunnel"], [])
        closes = [e for e in events if e["ev"] == "close"]
        self.assertEqual([(c["fd"], c["kind"], c["host"], c["port"], c["bytes_in"], "open_at_exit" in c)
                          for c in closes],
                         [(fd, "tunnel", f"ok.{DOMAIN}", net.ECHO_PORT, 0, False) for fd in out["fds"]])
        self.assertEqual(echo_connections(), before, "the target was never reached")
        return out, closes

    def test_close_after_the_request_went_out(self):
        out, closes = self.abandon("--abandon")
        self.assertEqual(out["read"], "EAGAIN", out)  # mid-handshake: nothing from the target yet
        # The 5 bytes written mid-handshake were held and reported written to the application, but
        # never left (the proxy got nothing after its request head): bytes_out does not count them.
        self.assertEqual(closes[0]["bytes_out"], 0)
        log = wait_for(lambda: net.proxy_log(self.proxy.log), "the proxy's log line")
        self.assertEqual([(e["method"], e["target"], e["status"], e["early_bytes"], e["error"]) for e in log],
                         [("CONNECT", f"ok.{DOMAIN}:{net.ECHO_PORT}", None, 0, "client closed before the reply")])

    def test_close_right_after_connect_16_times(self):
        """close() right after EINPROGRESS races the pump's first steps on the fd."""
        out, closes = self.abandon("--abandon=early", "--repeat", "16")
        self.assertEqual([c["bytes_out"] for c in closes], [0] * 16)
        # Each request goes out inside connect() when the proxy connection is up at once (as on
        # loopback, so far always); a close that wins that race leaves the proxy nothing to log.
        log = wait_for(lambda: net.proxy_log(self.proxy.log), "the proxy's log lines")
        self.assertLessEqual(len(log), 16, log)
        self.assertEqual({(e["status"], e["early_bytes"], e["error"]) for e in log},
                         {(None, 0, "client closed before the reply")})


class ForkExecMidHandshake(GatedProxyTest):
    """A non-blocking connect is pending (the proxy holds its 200) when the application forks; the
    child execs `netclient fdcheck` and exits before the proxy answers. The child inherits the
    socket (its peer is the proxy, nothing is waiting on it) but none of the shim's work: no
    engine, no pump thread, no trace event, and the proxy gets one CONNECT and no byte after it
    before its 200. The parent's tunnel then opens and carries its bytes."""

    def test_child_execs_while_the_parent_handshake_is_pending(self):
        before = echo_connections()
        r = run([NETCLIENT, "poll", f"ok.{DOMAIN}", str(net.ECHO_PORT), "--fork-exec", self.gate],
                env=self.env(self.proxy_url()), timeout=60, stdin=subprocess.DEVNULL)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2, r.stdout + r.stderr)
        child, parent = (json.loads(line) for line in lines)
        self.assertEqual((r.returncode, parent["ok"], parent["child_status"]), (0, True, 0), r.stdout + r.stderr)
        self.assertEqual(child, {"child": True, "pid": child["pid"], "fds": [0, 1, 2, parent["fd"]],
                                 "fd_is_socket": True, "peer": f"127.0.0.1:{self.proxy.ports[0]}", "unread": 0,
                                 "front_loaded": True, "engine_loaded": False, "threads": 1, "pump": False})
        log = net.proxy_log(self.proxy.log)
        self.assertEqual([(e["target"], e["status"], e["early_bytes"]) for e in log],
                         [(f"ok.{DOMAIN}:{net.ECHO_PORT}", 200, 0)], "one CONNECT, from the parent")
        self.assertEqual(echo_connections(), before + 1)
        events = read_trace(self.trace)
        self.assertNotIn(child["pid"], {e["pid"] for e in events})
        self.assertEqual([(e["ev"], e.get("result")) for e in events if e["ev"] in ("tunnel", "close")],
                         [("tunnel", "open"), ("close", None)])
        close = [e for e in events if e["ev"] == "close"][0]
        self.assertEqual((close["fd"], close["bytes_out"], close["bytes_in"]), (parent["fd"], 5, 5))


class SubprocessMidHandshake(GatedProxyTest):
    """Python's subprocess.run() while a non-blocking connect is pending. CPython 3.11 spawns with
    vfork(), and the child — still in the parent's memory — closes the inherited fds with
    close_range(3, …) before it execs. Through the shim's hook that used to clear the parent's
    engine state: the parent then read the proxy's `200 Connection established` as data,
    getpeername() named the proxy, and the trace got a `close` from the child's pid."""

    CODE = ("import select, socket, subprocess, sys\n" + PENDING_CONNECT +
            "subprocess.run(['/bin/true'], check=True)\n"
            "open(sys.argv[1], 'w').close()\n"
            "select.select([], [s], [], 20)\n"
            "s.settimeout(20)\n"
            "s.sendall(b'PING\\n')\n"
            "print(repr(s.recv(100)), s.getpeername() == addr)\n")

    def test_python_subprocess_while_the_handshake_is_pending(self):
        r = run([PYTHON, "-c", self.CODE, self.gate], env=self.env(self.proxy_url()), timeout=60)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "b'PING\\n' True"), r.stderr)
        events = read_trace(self.trace)
        self.assertEqual(len({e["pid"] for e in events}), 1, "every event from the parent")
        self.assertEqual([(e["ev"], e.get("result"), e.get("bytes_out")) for e in events
                          if e["ev"] in ("tunnel", "close")],
                         [("tunnel", "open", None), ("close", None, 5)])


class DupMidHandshake(GatedProxyTest):
    """While the proxy holds its 200, the application dup()s the socket, closes the original
    number and opens a socketpair, which gets that number. The handshake must go on through the
    dup: the shim's reads, writes and pump registration follow the connection to the fd that
    still refers to it, and never touch the socketpair now at the old number."""

    CODE = ("import os, select, socket, sys\n" + PENDING_CONNECT +
            "old = s.detach()\n"
            "t = socket.socket(fileno=os.dup(old))\n"
            "os.close(old)\n"
            "a, b = socket.socketpair()\n"
            "assert a.fileno() == old, (a.fileno(), old)\n"
            "b.setblocking(False)\n"
            "open(sys.argv[1], 'w').close()\n"
            "select.select([], [t], [], 20)\n"
            "t.settimeout(20)\n"
            "t.sendall(b'PING\\n')\n"
            "echo = t.recv(100)\n"
            "try:\n"
            "    leaked = b.recv(100)\n"
            "except BlockingIOError:\n"
            "    leaked = None\n"
            "print(repr(echo), repr(leaked), t.getpeername() == addr, old, t.fileno())\n")

    def test_close_of_the_original_fd_moves_the_handshake_to_the_dup(self):
        r = run([PYTHON, "-c", self.CODE, self.gate], env=self.env(self.proxy_url(), AWF_SHIM_TIMEOUT_MS="5000"),
                timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        echo, leaked, same_peer, old, new = r.stdout.split()
        self.assertEqual((echo, leaked, same_peer), ("b'PING\\n'", "None", "True"), r.stderr)
        events = read_trace(self.trace)
        self.assertEqual([(e["ev"], e.get("result"), e.get("fd")) for e in events if e["ev"] in ("tunnel", "close")],
                         [("tunnel", "open", int(new)), ("close", None, int(new))])


if __name__ == "__main__":
    unittest.main()
