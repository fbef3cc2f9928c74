"""Routing through the egress proxy by host name, with real clients that know nothing about
proxies (curl, python3, Node.js, a C client driving blocking, poll and edge-triggered epoll
sockets), through a real Squid set up like the firewall's and a fault-injecting proxy."""
import json
import os
import shutil
import socket
import tempfile
import unittest

import net
from harness import (FRONT, PROGRAMS, PYTHON, TempDirTest, assert_client_tunnel, read_trace, run, runtime, shim_env,
                     with_hosts_file, write_hosts_file)
from squid import Squid

NETCLIENT = os.path.join(PROGRAMS, "netclient")
W = None          # module scratch dir
CA = None         # test CA file
SQUID = None
_stack = []


def setUpModule():
    global W, CA, SQUID
    W = tempfile.mkdtemp(prefix="awfshim-routing-", dir="/tmp")
    os.chmod(W, 0o755)
    CA = net.make_ca(os.path.join(W, "ca"), [net.API, net.COPILOT_API, "plain.example"])
    tls = os.path.join(W, "ca")
    for name, listens, mode, tls_dir in [
        ("https", [f"{net.UPSTREAM_IP}:443", "[::1]:443"], "http", tls),
        ("echo", [f"{net.UPSTREAM_IP}:{net.ECHO_PORT}"], "echo", None),
        ("greeting", [f"{net.UPSTREAM_IP}:{net.GREETING_PORT}"], "greeting", None),
    ]:
        _stack.append(net.upstream(W, name, listens, mode, tls_dir, log=os.path.join(W, f"{name}.log")).__enter__())
    SQUID = Squid(os.path.join(W, "squid"), port=3128, allow=[f".{net.TENANT}"],
                  hosts={net.API: net.UPSTREAM_IP, net.COPILOT_API: net.UPSTREAM_IP},
                  extra_ports=[net.ECHO_PORT, net.GREETING_PORT]).start()


def tearDownModule():
    SQUID.stop(fast=True)
    for p in reversed(_stack):
        p.__exit__(None, None, None)
    shutil.rmtree(W, ignore_errors=True)


def upstream_requests():
    path = os.path.join(W, "https.log")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


class RoutingTest(TempDirTest):
    proxy_url = "http://127.0.0.1:3128"

    def setUp(self):
        super().setUp()
        # One Squid serves the whole module: a test looks only at the lines logged after those of
        # the tests before it (settled_log waits until all of theirs are in).
        self.squid_mark = len(SQUID.settled_log())

    def env(self, **extra):
        self.trace = self.path("trace.jsonl")
        base = dict(AWF_SHIM="1", AWF_SHIM_PROXY=self.proxy_url, GH_HOST=net.TENANT, AWF_SHIM_TRACE=self.trace,
                    SSL_CERT_FILE=CA, NODE_EXTRA_CA_CERTS=CA)
        base.update(extra)
        return shim_env(**base)

    def events(self, ev=None):
        return [e for e in read_trace(self.trace) if ev is None or e["ev"] == ev]

    def squid_entries(self, *keys):
        """This test's lines in Squid's log, each as the tuple of `keys`."""
        return [tuple(e[k] for k in keys) for e in SQUID.settled_log()[self.squid_mark:]]


class RealClientsThroughSquid(RoutingTest):
    def assert_tunnelled(self, r, path):
        """r printed the upstream's reply, then the local port of the client's connection."""
        assert_client_tunnel(self, r, path, self.squid_entries, net.API)
        tunnels = self.events("tunnel")
        self.assertTrue(any(t["target"] == f"{net.API}:443" and t["status"] == 200 and t["result"] == "open"
                            for t in tunnels), tunnels)

    def test_curl(self):
        r = run(["curl", "-sS", "-w", "\n%{local_port}", "--cacert", CA, f"https://{net.API}/curl"],
                env=self.env())
        self.assert_tunnelled(r, "/curl")
        dns = self.events("dns")[0]
        self.assertEqual((dns["host"], dns["mode"]), (net.API, "fake"))
        self.assertTrue(dns["addrs"][0].startswith("198.1"))
        connect = self.events("connect")[0]
        self.assertEqual((connect["decision"], connect["host"]), ("tunnel", net.API))
        tls = self.events("tls")[0]
        self.assertEqual(tls["sni"], net.API)
        close = self.events("close")[0]
        self.assertGreater(close["bytes_out"], 500)
        self.assertGreater(close["bytes_in"], 500)

    def test_python_urllib(self):
        code = (f"import urllib.request; r = urllib.request.urlopen('https://{net.API}/py');"
                "port = r.fp.raw._sock.getsockname()[1];"  # before read(), which closes it
                "print(r.read().decode()); print(port)")
        self.assert_tunnelled(run([PYTHON, "-c", code], env=self.env()), "/py")

    def test_node_https_get(self):
        code = (f"require('https').get('https://{net.API}/node', r => {{ const port = r.socket.localPort; let d = '';"
                " r.on('data', c => d += c); r.on('end', () => console.log(d + port)); })"
                ".on('error', e => { console.error(e.message); process.exit(1); })")
        self.assert_tunnelled(run([runtime("node-20"), "-e", code], env=self.env()), "/node")

    def test_a_fork_childs_copy_of_a_tunnel_counts_only_its_own_bytes(self):
        code = ("import os, socket\n"
                f"s = socket.create_connection(('{net.API}', {net.ECHO_PORT}))\n"
                "def echo(line):\n"
                "    s.sendall(line)\n"
                "    got = b''\n"
                "    while not got.endswith(b'\\n'): got += s.recv(100)\n"
                "    assert got == line, got\n"
                "echo(b'parent-1\\n')\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    echo(b'child\\n'); s.close(); os._exit(0)\n"
                "os.waitpid(pid, 0)\n"
                "echo(b'parent-2\\n'); s.close()\n")
        r = run([PYTHON, "-c", code], env=self.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        closes = {e["pid"]: e for e in self.events("close")}
        self.assertEqual(len(closes), 2, closes)
        parent = next(e for e in closes.values() if not e.get("inherited"))
        child = next(e for e in closes.values() if e.get("inherited"))
        self.assertEqual((child["bytes_out"], child["bytes_in"]), (6, 6))
        self.assertEqual((parent["bytes_out"], parent["bytes_in"]), (18, 18))

    def test_a_socket_above_the_processs_own_fd_limit(self):
        # An fd inherited or made before the process lowered its limit stays usable above it (a
        # supervisor passing sockets down, a program dropping its limit once started): the
        # engine, attaching later, must follow it like any other.
        code = ("import os, resource, socket, ssl\n"
                "s = socket.socket()\n"
                "os.dup2(s.fileno(), 5000); s.close()\n"
                "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))\n"
                "s = socket.socket(fileno=5000)\n"
                f"s.connect(('{net.API}', 443))\n"  # the first lookup: the engine attaches now
                f"t = ssl.create_default_context().wrap_socket(s, server_hostname='{net.API}')\n"
                f"t.sendall(b'GET /high-fd HTTP/1.1\\r\\nHost: {net.API}\\r\\nConnection: close\\r\\n\\r\\n')\n"
                "reply = b''\n"
                "while chunk := t.recv(65536): reply += chunk\n"
                "print(reply.split(b'\\r\\n\\r\\n', 1)[1].decode()); print(t.getsockname()[1])\n")
        r = run([PYTHON, "-c", code], env=self.env())
        self.assert_tunnelled(r, "/high-fd")
        self.assertEqual([e["fd"] for e in self.events("connect")], [5000])
        closes = self.events("close")  # the shim saw the connection through: its bytes are counted
        self.assertEqual([c["fd"] for c in closes], [5000], closes)
        self.assertGreater(closes[0]["bytes_out"], 500)
        self.assertGreater(closes[0]["bytes_in"], 500)

    def test_curl_ipv6_only(self):
        r = run(["curl", "-6", "-sS", "-w", "\n%{local_port}", "--cacert", CA, f"https://{net.API}/six"],
                env=self.env())
        self.assert_tunnelled(r, "/six")
        self.assertIn(":", self.events("connect")[0]["addr"].split("]")[0])

    def test_c_client_blocking_poll_and_edge_triggered_epoll(self):
        for mode in ("blocking", "poll", "epoll"):
            r = run([NETCLIENT, mode, net.API, str(net.ECHO_PORT)], env=self.env())
            self.assertEqual(json.loads(r.stdout)["ok"], True, f"{mode}: {r.stdout} {r.stderr}")
        self.assertEqual(self.squid_entries("method", "url", "status", "squid_status"),
                         [("CONNECT", f"{net.API}:{net.ECHO_PORT}", 200, "TCP_TUNNEL")] * 3)

    def test_server_speaks_first(self):
        for mode in ("blocking", "poll", "epoll"):
            r = run([NETCLIENT, mode, net.API, str(net.GREETING_PORT), "--server-first"], env=self.env())
            self.assertEqual(json.loads(r.stdout)["ok"], True, f"{mode}: {r.stdout} {r.stderr}")

    def test_squid_denies_a_host_outside_its_allowlist(self):
        env = self.env(AWF_SHIM_ROUTE=f"*.{net.TENANT},evil.example")
        r = run(["curl", "-sS", "--cacert", CA, "https://evil.example/x"], env=env)
        # Non-blocking: the refusal shows at connect (7) or, if curl already wrote its ClientHello
        # before Squid answered, at the first read (35): either way a refused connection.
        self.assertIn(r.returncode, (7, 35), r.stderr)
        tunnels = self.events("tunnel")
        self.assertEqual((tunnels[0]["status"], tunnels[0]["squid_error"], tunnels[0]["errno"]),
                         (403, "ERR_ACCESS_DENIED 0", "ECONNREFUSED"))
        # Refused at connect, curl tries the name's other address: one denial per tunnel.
        self.assertEqual(self.squid_entries("method", "url", "status", "squid_status"),
                         [("CONNECT", "evil.example:443", 403, "TCP_DENIED")] * len(tunnels))

    def test_squid_denies_raw_addresses_when_everything_is_routed(self):
        # 192.0.2.10 (TEST-NET-1) is only ever named to Squid on loopback; Squid refuses raw IPs.
        r = run(["curl", "-sS", "-m", "20", "https://192.0.2.10/"], env=self.env(AWF_SHIM_ROUTE="*"))
        self.assertNotEqual(r.returncode, 0)
        tunnel = self.events("tunnel")[0]
        self.assertEqual((tunnel["target"], tunnel["status"]), ("192.0.2.10:443", 403))
        self.assertEqual(self.squid_entries("method", "url", "status", "squid_status"),
                         [("CONNECT", "192.0.2.10:443", 403, "TCP_DENIED")])

    def test_application_that_proxies_itself_is_not_tunnelled_twice(self):
        env = self.env(HTTPS_PROXY=self.proxy_url)
        r = run(["curl", "-sS", "-w", "\n%{local_port}", "--cacert", CA, f"https://{net.API}/self"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        reply, port = r.stdout.strip().rsplit("\n", 1)
        self.assertEqual(json.loads(reply)["path"], "/self")
        tunnels = self.events("tunnel")
        self.assertEqual(len(tunnels), 1, tunnels)
        self.assertEqual((tunnels[0]["by"], tunnels[0]["target"], tunnels[0]["status"]),
                         ("application", f"{net.API}:443", 200))
        self.assertEqual(self.events("connect")[0]["reason"], "the application talks to the proxy itself")
        # One CONNECT reached Squid in all: curl's own, on curl's connection.
        self.assertEqual(self.squid_entries("client_port", "method", "url", "status", "squid_status"),
                         [(int(port), "CONNECT", f"{net.API}:443", 200, "TCP_TUNNEL")])

    def test_getpeername_reports_the_address_asked_for(self):
        code = (f"import socket; a = socket.getaddrinfo('{net.API}', {net.ECHO_PORT}, socket.AF_INET)[0][4];"
                "s = socket.create_connection(a); print(a, s.getpeername())")
        r = run([PYTHON, "-c", code], env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        asked, peer = r.stdout.strip().split(") (")
        self.assertEqual(asked + ")", "(" + peer)


class ProxyWithSeveralAddresses(RoutingTest):
    """The proxy named by a name with several addresses, the first where nothing listens: ::1, then
    127.0.0.1, where Squid is (as localhost is in Docker's /etc/hosts). curl -x goes on to
    the next address; the shim used to stop at the first (ECONNREFUSED for every routed host)."""
    proxy_url = "http://proxy.dual:3128"

    def setUp(self):
        super().setUp()
        self.hosts = write_hosts_file(self.path("hosts"), "127.0.0.1 localhost\n::1 proxy.dual\n127.0.0.1 proxy.dual\n")

    def assert_tunnelled(self, r, path):
        assert_client_tunnel(self, r, path, self.squid_entries, net.API)
        self.assertEqual([(t["proxy"], t["result"]) for t in self.events("tunnel")], [("proxy.dual:3128", "open")])

    def test_curl_and_curl_x_alike(self):
        native = run(with_hosts_file(self.hosts, "curl", "-sS", "-x", self.proxy_url, "--cacert", CA, "-o", "/dev/null",
                                     f"https://{net.API}/native"), env=shim_env(preload=False))
        self.assertEqual(native.returncode, 0, native.stderr)
        r = run(with_hosts_file(self.hosts, "curl", "-sS", "-w", "\n%{local_port}", "--cacert", CA,
                                f"https://{net.API}/curl"), env=self.env())
        self.assert_tunnelled(r, "/curl")

    def test_python_blocking_connect(self):
        code = (f"import urllib.request; r = urllib.request.urlopen('https://{net.API}/py');"
                "port = r.fp.raw._sock.getsockname()[1];"
                "print(r.read().decode()); print(port)")
        self.assert_tunnelled(run(with_hosts_file(self.hosts, PYTHON, "-c", code), env=self.env()), "/py")

    def test_no_address_answers(self):
        code = (f"import socket\ntry: socket.create_connection(('{net.API}', 443))\n"
                "except ConnectionRefusedError: print('refused')\n")
        r = run(with_hosts_file(self.hosts, PYTHON, "-c", code), env=self.env(AWF_SHIM_PROXY="http://proxy.dual:9"))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "refused\n", ""))
        # One tunnel per address the client was given for the host (IPv6, then IPv4), each trying
        # both of the proxy's.
        tunnels = self.events("tunnel")
        self.assertEqual({(t["result"], t["errno"], t["reason"]) for t in tunnels},
                         {("failed", "ECONNREFUSED", "cannot reach the proxy at any of its 2 addresses: Connection refused")})
        self.assertEqual(len(tunnels), 2, tunnels)


class NodeReusesFdNumbers(RoutingTest):
    """libuv closes sockets with syscall(SYS_close), which no close hook sees: the state of a routed
    connection stayed on its fd number, and the next socket or file given that number inherited it
    (a second connect failed with EISCONN; writes to a file after a refused tunnel failed with
    ECONNREFUSED). Real Node programs, on both pinned Node versions, with a new connection per
    request (agent: false) so that fd numbers are reused all the time."""

    # Chains of requests, one connection each: CONCURRENCY chains, each at least MIN requests and
    # going on until SECONDS have passed. Prints {"ok", "errors" (first few), "nerrors"}.
    RECONNECT = """
        const https = require('https');
        const [url, concurrency, min, seconds] = [process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4]];
        const until = Date.now() + seconds * 1000;
        let ok = 0;
        const errors = [];
        const one = (id) => new Promise((done) => {
          https.get(url + id, {agent: false}, (r) => {
            let body = '';
            r.on('data', (c) => body += c);
            r.on('end', () => {
              if (r.statusCode === 200 && JSON.parse(body).path === '/reuse/' + id) ok++;
              else errors.push(r.statusCode + ' ' + body.slice(0, 80));
              done();
            });
          }).on('error', (e) => { errors.push(e.code || e.message); done(); });
        });
        const chain = async (c) => { for (let n = 0; n < min || Date.now() < until; n++) await one(c + '-' + n); };
        Promise.all([...Array(concurrency).keys()].map(chain))
          .then(() => console.log(JSON.stringify({ok, errors: errors.slice(0, 5), nerrors: errors.length})));
    """
    SOAK_SECONDS = int(os.environ.get("AWF_TEST_SOAK_SECONDS", "120"))

    def reconnect(self, node, concurrency, minimum, seconds):
        r = run([runtime(node), "-e", self.RECONNECT, f"https://{net.API}/reuse/", str(concurrency), str(minimum),
                 str(seconds)], env=self.env(), timeout=seconds + 120)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["nerrors"], out["errors"]), (0, []), out)
        tunnels = [e for e in self.events("tunnel") if e["result"] == "open"]
        self.assertEqual(len(tunnels), out["ok"])
        # Every connection's close was seen (libuv's raw close included), none left open at exit.
        closes = [e for e in self.events("close") if e["kind"] == "tunnel"]
        self.assertEqual((len(closes), [e for e in closes if e.get("open_at_exit")]), (out["ok"], []))
        return out["ok"]

    def test_sequential_requests_each_on_a_new_connection(self):
        for node in ("node-20", "node-24"):
            with self.subTest(node=node):
                self.assertEqual(self.reconnect(node, 1, 6, 0), 6)
                os.unlink(self.trace)

    def test_concurrent_reconnects_for_a_while(self):
        done = self.reconnect("node-24", 4, 5, self.SOAK_SECONDS)
        self.assertGreaterEqual(done, 20)

    def test_files_opened_after_refused_tunnels_work(self):
        # Squid refuses evil.example; the fd number of each refused socket goes to a file next.
        code = """
            const https = require('https'), fs = require('fs');
            const attempt = () => new Promise((done) => https.get('https://evil.example/', () => done('answered'))
                .on('error', (e) => done(e.code)));
            (async () => {
              const seen = [];
              for (let i = 0; i < 5; i++) {
                seen.push(await attempt());
                const fd = fs.openSync(process.argv[1], 'a');
                fs.writeSync(fd, 'line ' + i + '\\n');
                fs.closeSync(fd);
              }
              console.log(JSON.stringify(seen));
            })();
        """
        target = self.path("out.txt")
        r = run([runtime("node-24"), "-e", code, target], env=self.env(AWF_SHIM_ROUTE=f"*.{net.TENANT},evil.example"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), ["ECONNREFUSED"] * 5)
        self.assertEqual(open(target).read(), "".join(f"line {i}\n" for i in range(5)))


class FakeDns(RoutingTest):
    CODE = ("import socket, sys; fam = {'4': socket.AF_INET, '6': socket.AF_INET6, 'any': 0}[sys.argv[1]];"
            "print([ (a[0].name, a[4][0]) for a in socket.getaddrinfo(sys.argv[2], 443, fam, socket.SOCK_STREAM)])")

    def lookup(self, family, name=net.API, **env):
        r = run([PYTHON, "-c", self.CODE, family, name], env=self.env(**env))
        self.assertEqual(r.returncode, 0, r.stderr)
        return eval(r.stdout)

    def test_requested_family_only(self):
        v6 = self.lookup("6")
        self.assertEqual([f for f, _ in v6], ["AF_INET6"])
        self.assertTrue(v6[0][1].startswith("fd77:6166:7368:696d:"))
        v4 = self.lookup("4")
        self.assertEqual([f for f, _ in v4], ["AF_INET"])
        self.assertTrue(v4[0][1].startswith("198.18.") or v4[0][1].startswith("198.19."))

    def test_unspecified_family_puts_the_proxys_family_first(self):
        self.assertEqual([f for f, _ in self.lookup("any")], ["AF_INET", "AF_INET6"])
        self.assertEqual([f for f, _ in self.lookup("any", AWF_SHIM_PROXY="http://[::1]:3128")], ["AF_INET6", "AF_INET"])

    def test_addresses_agree_across_processes(self):
        self.assertEqual(self.lookup("any"), self.lookup("any"))
        self.assertNotEqual(self.lookup("any"), self.lookup("any", name=net.COPILOT_API))

    def test_unrouted_names_are_left_to_libc(self):
        self.assertEqual(self.lookup("4", name="localhost"), [("AF_INET", "127.0.0.1")])
        self.assertEqual(self.events("dns")[-1]["mode"], "passthrough")

    def test_gethostbyname_and_getnameinfo(self):
        code = (f"import socket; ip = socket.gethostbyname('{net.API}'); print(ip);"
                f"print(socket.getnameinfo((ip, 443), 0)[0]);"
                f"print(socket.gethostbyname_ex('{net.API}')[2])")
        r = run([PYTHON, "-c", code], env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        ip, name, addrs = r.stdout.split("\n")[:3]
        self.assertTrue(ip.startswith("198.1"))
        self.assertEqual(name, net.API)
        self.assertEqual(eval(addrs), [ip])


if __name__ == "__main__":
    unittest.main()
