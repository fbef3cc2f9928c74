"""Fail closed and explain: every way the proxy can go wrong ends in a connection error for the
application and a trace that says why — never a direct connection, never a hang. Also: event
loops keep running while a slow proxy answers, and many threads with a fork in the middle."""
import json
import os
import shutil
import tempfile
import unittest

import net
from harness import PROGRAMS, TempDirTest, read_trace, run, shim_env
from squid import Squid

NETCLIENT = os.path.join(PROGRAMS, "netclient")
STORM = os.path.join(PROGRAMS, "connect_storm")
DOMAIN = "fault.test"
FAULTS = {  # host under DOMAIN -> the fixture proxy's fault mode
    "deny": "deny", "s502": "status502", "garbage": "garbage", "close": "close", "midhead": "close-mid-head",
    "huge": "huge-head", "slow": "slowloris", "delay": "delay=2", "ok": "none",
}
W = CA = PROXY = None
_stack = []


def setUpModule():
    global W, CA, PROXY
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


def tearDownModule():
    for p in reversed(_stack):
        p.__exit__(None, None, None)
    shutil.rmtree(W, ignore_errors=True)


def echo_connections():
    path = os.path.join(W, "echo.log")
    return len(open(path).readlines()) if os.path.exists(path) else 0


class FaultTest(TempDirTest):
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
        r = run(["node", "-e", code], env=self.env(), timeout=60)
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


if __name__ == "__main__":
    unittest.main()


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
