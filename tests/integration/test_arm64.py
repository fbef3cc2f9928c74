"""arm64 (aarch64) under qemu-user: real arm64 clients in the arm64 root (tests/integration/arm64.py),
each checked to be an aarch64 ELF executable (e_machine 183) run by the kernel through qemu-aarch64
(binfmt_misc), against native Squid and native fixtures on the test namespace's loopback.

Arm64Root: the root works without the shim — the arm64 curl, python3 and Node.js 24 reach a native
HTTPS upstream through Squid (each told the proxy itself); the arm64 Copilot CLI 1.0.102 and the
all-JavaScript 1.0.6 on arm64 Node run.

The shim's aarch64 build in the root (LD_PRELOAD=arm64.FRONT_AARCH64, AWF_SHIM=1, no proxy variable
given to the client): ShimRouting — curl, python3 (blocking connect), Node.js 24 (non-blocking,
libuv), the C test client (blocking, poll, edge-triggered epoll), IPv6, dup and close — each tunnelled
through Squid by name, its trace read by the aarch64 awf-shim-trace in the root; FailsClosed — a
proxy that refuses or never answers, an engine that is missing or built for x86-64: an error for the
client, nothing connected directly (net.DirectTrap); CopilotEndToEnd — the arm64 Copilot CLI 1.0.102
answers a prompt on the fake GHE.com data-residency tenant through a real Squid (tests/e2e/firewall.py).

The default run (scripts/test) runs a bounded part: one routed curl and the Copilot CLI end to end.
AWF_TEST_ARM64=full (scripts/test --arch aarch64) runs every test here.

Nothing here installs or builds: with the root, a runtime or the aarch64 build missing, a test fails
at once naming what to run (scripts/lib/install-arm64-root; scripts/lib/install-runtimes node-24-arm64
copilot-1.0.102-arm64; ninja -C build-aarch64). Squid, the upstreams and the fake tenant are the
native build's (AWF_BUILD)."""
import json
import os
import subprocess
import tempfile
import unittest

import arm64
import net
from firewall import ANSWER, Firewall, pkg_cache
from harness import ENGINE, assert_client_tunnel, assert_summary_tunnelled, read_trace, runtime

FULL = os.environ.get("AWF_TEST_ARM64") == "full"
full_suite = unittest.skipUnless(FULL, "the whole arm64 suite runs under scripts/test --arch aarch64")

NETCLIENT = os.path.join(arm64.PROGRAMS_AARCH64, "netclient")
FAULT_DOMAIN = "fault.test"
FAULTS = {"deny": "deny", "hang": "slowloris", "ok": "none"}  # host under FAULT_DOMAIN -> fault mode
FIXTURES = arm64.Fixtures("awfshim-arm64-", [net.API, *(f"{h}.{FAULT_DOMAIN}" for h in FAULTS)], echo=True)
TRAP = None       # net.DirectTrap on the synthetic addresses, port 443 (made on first use)
SYNTHETIC = {}    # host -> the addresses the shim's fake DNS gives it


def setUpModule():
    FIXTURES.start()


def tearDownModule():
    FIXTURES.stop()


def upstream_requests():
    path = os.path.join(FIXTURES.dir, "https.log")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


def direct_trap():
    """The trap for direct connections to the routed hosts (the tenant's, the fault hosts): their
    synthetic addresses as the arm64 python3 under the aarch64 shim looks them up, on loopback,
    port 443. Made on first use (it needs the aarch64 build), kept for the module."""
    global TRAP
    if TRAP is None:
        hosts = [*Firewall(FIXTURES.dir).hosts, *(f"{h}.{FAULT_DOMAIN}" for h in FAULTS)]
        code = ("import json, socket, sys\n"
                "print(json.dumps({h: sorted({a[4][0] for a in socket.getaddrinfo(h, 443, type=socket.SOCK_STREAM)})"
                " for h in sys.argv[1:]}))")
        arm64.aarch64_build()
        r = arm64.run_in_root(["python3", "-c", code, *hosts], binds=[FIXTURES.dir], env=arm64.shim_env(
            FIXTURES.dir, AWF_SHIM_PROXY=FIXTURES.squid.proxy_url, AWF_SHIM_ROUTE=",".join(hosts)))
        if r.returncode != 0:
            raise AssertionError(f"arm64 python3 under the shim could not look up the routed hosts: {r.stderr}")
        SYNTHETIC.update(json.loads(r.stdout))
        TRAP = FIXTURES.add(net.DirectTrap([a for addrs in SYNTHETIC.values() for a in addrs], 443).__enter__())
    return TRAP


class RootTest(unittest.TestCase):
    def setUp(self):
        self.squid_mark = len(FIXTURES.squid.settled_log())
        self.home = tempfile.mkdtemp(prefix="home-", dir=FIXTURES.dir)

    def env(self, **extra):
        return {"PATH": arm64.ROOT_PATH, "HOME": self.home, "LANG": "C.UTF-8", **extra}

    def run_in_root(self, argv, env=None, binds=(), **kw):
        return arm64.run_in_root(argv, env=env or self.env(), binds=[FIXTURES.dir, *binds], **kw)

    def assert_aarch64(self, host_path):
        self.assertEqual(arm64.elf_machine(host_path), arm64.EM_AARCH64, f"{host_path} is not an aarch64 executable")

    def squid_entries(self, *keys, squid=None):
        """This test's lines in Squid's log, each as the tuple of `keys`."""
        return [tuple(e[k] for k in keys) for e in (squid or FIXTURES.squid).settled_log()[self.squid_mark:]]


@full_suite
class Arm64Root(RootTest):
    def assert_through_squid(self, r, path):
        """r printed the upstream's reply (then anything); Squid tunnelled exactly that request."""
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        body = json.loads(r.stdout.split("\n", 1)[0])
        self.assertEqual((body["host"], body["sni"], body["path"]), (net.API, net.API, path))
        self.assertIn(path, [q.get("path") for q in upstream_requests()])
        self.assertEqual(self.squid_entries("method", "url", "status", "squid_status"),
                         [("CONNECT", f"{net.API}:443", 200, "TCP_TUNNEL")])

    def test_the_root_runs_aarch64_programs_through_binfmt(self):
        self.assertEqual(arm64.elf_machine("/bin/sh"), arm64.EM_X86_64 if os.uname().machine == "x86_64"
                         else arm64.EM_AARCH64)  # the check tells the host's programs apart
        for prog in ("/usr/bin/curl", "/usr/bin/python3", "/usr/bin/git", "/usr/bin/uname"):
            self.assert_aarch64(arm64.in_root(prog))
        r = self.run_in_root(["sh", "-c", "uname -m; git --version; python3 --version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], "aarch64")
        self.assertRegex(r.stdout, r"git version 2\.39\.")
        self.assertRegex(r.stdout, r"Python 3\.11\.")

    def test_curl_through_squid(self):
        self.assert_aarch64(arm64.in_root("/usr/bin/curl"))
        r = self.run_in_root(["curl", "-sS", "-x", FIXTURES.squid.proxy_url, "--cacert", FIXTURES.ca,
                              f"https://{net.API}/arm64-curl"])
        self.assert_through_squid(r, "/arm64-curl")

    def test_python_urllib_through_squid(self):
        self.assert_aarch64(arm64.in_root("/usr/bin/python3"))
        code = ("import platform, ssl, urllib.request\n"
                f"ctx = ssl.create_default_context(cafile={FIXTURES.ca!r})\n"
                f"opener = urllib.request.build_opener(urllib.request.ProxyHandler({{'https': {FIXTURES.squid.proxy_url!r}}}),\n"
                "                                     urllib.request.HTTPSHandler(context=ctx))\n"
                f"print(opener.open('https://{net.API}/arm64-py').read().decode())\n"
                "print(platform.machine())\n")
        r = self.run_in_root(["python3", "-c", code])
        self.assert_through_squid(r, "/arm64-py")
        self.assertEqual(r.stdout.split()[-1], "aarch64")

    def test_node_https_get_through_squid(self):
        node = runtime("node-24-arm64")
        self.assert_aarch64(node)
        code = (f"require('https').get('https://{net.API}/arm64-node', r => {{ let d = '';"
                " r.on('data', c => d += c); r.on('end', () => console.log(d + '\\n' + process.arch)); })"
                ".on('error', e => { console.error(e.message); process.exit(1); })")
        # Node 24's own proxy support (NODE_USE_ENV_PROXY) makes https.get ask Squid for a tunnel.
        r = self.run_in_root([node, "-e", code], self.env(NODE_USE_ENV_PROXY="1", HTTPS_PROXY=FIXTURES.squid.proxy_url,
                                                          NODE_EXTRA_CA_CERTS=FIXTURES.ca))
        self.assert_through_squid(r, "/arm64-node")
        self.assertEqual(r.stdout.split()[-1], "arm64")

    def test_copilot_1_0_102_arm64_version(self):
        copilot = runtime("copilot-1.0.102-arm64")
        self.assert_aarch64(copilot)
        r = self.run_in_root([copilot, "--version"], self.env(COPILOT_PKG_CACHE_HOME=pkg_cache(copilot)))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("GitHub Copilot CLI 1.0.102.", r.stdout)

    def test_copilot_1_0_6_runs_on_node_24_arm64(self):
        # 1.0.6 is all JavaScript and ships every platform's native parts (linux-arm64 too): the
        # x86 tests' install runs on arm64 Node as it is.
        r = self.run_in_root([runtime("node-24-arm64"), runtime("copilot-1.0.6"), "--version"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("GitHub Copilot CLI 1.0.6.", r.stdout)


class ShimTest(RootTest):
    """A client in the root under the aarch64 front, with a trace file of its own (in FIXTURES.dir)."""
    proxy_url = None  # the module's Squid unless a class says otherwise

    def setUp(self):
        arm64.aarch64_build(arm64.TRACE_TOOL_AARCH64, NETCLIENT)
        super().setUp()
        self.trace = os.path.join(self.home, "trace.jsonl")
        self.direct_before = len(direct_trap().connections())

    def env(self, **extra):
        return arm64.shim_env(self.home, self.trace, **{
            "AWF_SHIM_PROXY": self.proxy_url or FIXTURES.squid.proxy_url, "GH_HOST": net.TENANT,
            "SSL_CERT_FILE": FIXTURES.ca, "NODE_EXTRA_CA_CERTS": FIXTURES.ca, **extra})

    def events(self, ev=None):
        return [e for e in read_trace(self.trace) if ev is None or e["ev"] == ev]

    def summary(self):
        """The aarch64 awf-shim-trace, run in the root, on this test's trace: its summary --json."""
        r = self.run_in_root([arm64.TRACE_TOOL_AARCH64, "summary", "--json", self.trace], super().env())
        self.assertEqual(r.returncode, 0, f"the aarch64 awf-shim-trace summary --json in the root: {r.stderr}")
        return json.loads(r.stdout)

    def assert_nothing_went_direct(self):
        self.assertEqual(TRAP.connections()[self.direct_before:], [], "a routed host's address was connected directly")

    def assert_summary_tunnelled(self, hosts, exe):
        """The aarch64 awf-shim-trace's summary: each host tunnelled and never refused, no process
        connected anything directly; every process that traced is `exe`."""
        doc = self.summary()
        assert_summary_tunnelled(self, doc, hosts)
        self.assertEqual({e["exe"] for e in self.events("init")}, {exe})
        self.assert_nothing_went_direct()
        return doc


class ShimRouting(ShimTest):
    """Clients that know nothing about proxies, each tunnelled through Squid by host name."""

    def assert_tunnelled(self, r, path, exe, nonblocking, tapped=True):
        """r printed the upstream's reply, then the local port of the client's connection: the
        upstream saw the request, Squid logged the tunnel on that very connection, the trace has its
        fake DNS answer, its tunnelled connect and the open tunnel (and, `tapped`: the TLS tap's
        `http` event of the exchange, on that fd), and the aarch64 tool agrees."""
        assert_client_tunnel(self, r, path, self.squid_entries, net.API)
        dns = [e for e in self.events("dns") if e["host"] == net.API]
        self.assertTrue(dns and all(e["mode"] == "fake" for e in dns), dns)
        connects = [e for e in self.events("connect") if e.get("host") == net.API]
        self.assertTrue(connects, self.events())
        self.assertEqual({(e["decision"], e["reason"], e["nonblocking"]) for e in connects},
                         {("tunnel", "routed name", nonblocking)})
        self.assertIn(connects[0]["addr"].rsplit(":", 1)[0], [a for e in dns for a in e["addrs"]])
        tunnels = self.events("tunnel")
        self.assertTrue(any((t["target"], t["result"], t["status"], t["proxy"]) ==
                            (f"{net.API}:443", "open", 200, FIXTURES.squid.proxy_url.split("//")[1]) for t in tunnels), tunnels)
        if tapped:  # the system's libssl, tapped as on x86-64
            self.assertEqual([(h["fd"], h["method"], h["path"], h["status"]) for h in self.events("http")],
                             [(connects[0]["fd"], "GET", path, 200)])
        self.assert_summary_tunnelled([net.API], exe)
        return connects

    def test_curl(self):
        self.assert_aarch64(arm64.in_root("/usr/bin/curl"))
        r = self.run_in_root(["curl", "-sS", "-w", "\n%{local_port}", "--cacert", FIXTURES.ca,
                              f"https://{net.API}/arm64-curl"], self.env())
        self.assert_tunnelled(r, "/arm64-curl", "curl", nonblocking=True)
        close = self.events("close")[0]
        self.assertEqual((close["kind"], close["host"]), ("tunnel", net.API))
        self.assertGreater(close["bytes_out"], 500)
        self.assertGreater(close["bytes_in"], 500)

    @full_suite
    def test_python_urllib_blocking_connect(self):
        code = (f"import urllib.request; r = urllib.request.urlopen('https://{net.API}/arm64-py');"
                "port = r.fp.raw._sock.getsockname()[1];"  # before read(), which closes it
                "print(r.read().decode()); print(port)")
        r = self.run_in_root(["python3", "-c", code], self.env())
        self.assert_tunnelled(r, "/arm64-py", "python3", nonblocking=False)

    @full_suite
    def test_node_https_get_nonblocking_connect(self):
        code = (f"require('https').get('https://{net.API}/arm64-node', r => {{ const port = r.socket.localPort;"
                " let d = ''; r.on('data', c => d += c); r.on('end', () => console.log(d + port)); })"
                ".on('error', e => { console.error(e.message); process.exit(1); })")
        r = self.run_in_root([runtime("node-24-arm64"), "-e", code], self.env())
        # Node calls its own OpenSSL, which only a patch of the executable taps: not this test's subject.
        self.assert_tunnelled(r, "/arm64-node", "node", nonblocking=True, tapped=False)

    @full_suite
    def test_curl_ipv6_only(self):
        r = self.run_in_root(["curl", "-6", "-sS", "-w", "\n%{local_port}", "--cacert", FIXTURES.ca,
                              f"https://{net.API}/arm64-six"], self.env())
        connects = self.assert_tunnelled(r, "/arm64-six", "curl", nonblocking=True)
        # The synthetic IPv6 address (curl asks for any family and keeps the IPv6 one).
        self.assertEqual([e["addr"][:21] for e in connects], ["[fd77:6166:7368:696d:"])

    @full_suite
    def test_c_client_blocking_poll_and_edge_triggered_epoll(self):
        for mode in ("blocking", "poll", "epoll"):
            r = self.run_in_root([NETCLIENT, mode, net.API, str(net.ECHO_PORT)], self.env())
            self.assertEqual(json.loads(r.stdout or "{}").get("ok"), True, f"{mode}: {r.stdout} {r.stderr}")
        self.assertEqual(self.squid_entries("method", "url", "status", "squid_status"),
                         [("CONNECT", f"{net.API}:{net.ECHO_PORT}", 200, "TCP_TUNNEL")] * 3)
        self.assertEqual([(e["decision"], e["nonblocking"]) for e in self.events("connect")],
                         [("tunnel", False), ("tunnel", True), ("tunnel", True)])
        self.assertEqual([(e["result"], e["status"]) for e in self.events("tunnel")], [("open", 200)] * 3)
        self.assertEqual([h["ports"] for h in self.summary()["hosts"] if h["host"] == net.API], [[net.ECHO_PORT]])

    @full_suite
    def test_dup_then_close_the_original_keeps_the_tunnel(self):
        code = ("import os, socket\n"
                f"s = socket.create_connection(('{net.API}', {net.ECHO_PORT}), timeout=20)\n"
                "s.sendall(b'PING\\n'); assert s.recv(5) == b'PING\\n'\n"
                "t = socket.socket(fileno=os.dup(s.fileno())); t.settimeout(20)\n"
                "s.close()\n"
                "t.sendall(b'AGAIN\\n'); assert t.recv(6) == b'AGAIN\\n'\n"
                "t.close()\n")
        r = self.run_in_root(["python3", "-c", code], self.env())
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        closes = self.events("close")
        self.assertEqual([(c["kind"], c["host"], c["port"], c["bytes_out"], c["bytes_in"], "open_at_exit" in c)
                          for c in closes], [("tunnel", net.API, net.ECHO_PORT, 11, 11, False)],
                         "one close, at the last one, with both exchanges' bytes")
        self.assertEqual(self.squid_entries("method", "url", "status"), [("CONNECT", f"{net.API}:{net.ECHO_PORT}", 200)])


@full_suite
class FailsClosed(ShimTest):
    """The proxy refuses, or never answers; the engine is missing, or built for x86-64: the arm64
    client gets a connection error, and nothing reaches a routed host's address directly."""

    @classmethod
    def setUpClass(cls):
        proxy = net.connect_proxy(FIXTURES.dir, name="faults", maps=[f"*={net.UPSTREAM_IP}"],
                                  faults_for=[f"{h}.{FAULT_DOMAIN}={m}" for h, m in FAULTS.items()]).__enter__()
        cls.addClassCleanup(proxy.__exit__, None, None, None)
        cls.proxy_url = f"http://127.0.0.1:{proxy.ports[0]}"

    def env(self, **extra):
        return super().env(AWF_SHIM_ROUTE=f"*.{FAULT_DOMAIN}", **extra)

    def netclient(self, mode, host, env, binds=()):
        r = self.run_in_root([NETCLIENT, mode, host, "443"], env, binds)
        self.assertTrue(r.stdout, r.stderr)
        return json.loads(r.stdout), r.stderr

    def assert_fails(self, host, errno_name, reason, **extra):
        host = f"{host}.{FAULT_DOMAIN}"
        for mode in ("blocking", "epoll"):
            out, _ = self.netclient(mode, host, self.env(**extra))
            self.assertFalse(out["ok"], f"{mode}: {out}")
            self.assertIn(errno_name, out["error"], f"{mode}: {out}")
        self.assert_nothing_went_direct()
        tunnels = self.events("tunnel")
        self.assertEqual([(t["target"], t["result"], t["errno"]) for t in tunnels],
                         [(f"{host}:443", "failed", errno_name)] * 2, tunnels)
        for t in tunnels:
            self.assertIn(reason, t["reason"])
        return tunnels

    def test_the_proxy_refuses(self):
        tunnels = self.assert_fails("deny", "ECONNREFUSED", "refused CONNECT: 403")
        self.assertEqual({(t["status"], t["squid_error"]) for t in tunnels}, {(403, "ERR_ACCESS_DENIED 0")})

    def test_the_proxy_never_answers(self):
        self.assert_fails("hang", "ETIMEDOUT", "no answer from the proxy", AWF_SHIM_TIMEOUT_MS="1500")

    def test_no_usable_engine_refuses_every_connection_but_loopback_and_the_proxy(self):
        # Without the engine there is no fake DNS: the client connects the synthetic address itself.
        self.assertTrue(os.path.isfile(ENGINE), f"no x86-64 engine at {ENGINE}: build it (ninja -C {os.path.dirname(ENGINE)})")
        addr = next(a for a in SYNTHETIC[f"ok.{FAULT_DOMAIN}"] if ":" not in a)
        for name, core, why in [("missing", os.path.join(FIXTURES.dir, "no-such-engine.so"), "No such file"),
                                ("x86-64", ENGINE, "built for another architecture (ELF machine 62, this is 183)")]:
            with self.subTest(engine=name):
                if os.path.exists(self.trace):
                    os.unlink(self.trace)
                out, stderr = self.netclient("blocking", addr, self.env(AWF_SHIM_CORE=core), [(ENGINE, ENGINE, "ro")])
                self.assertFalse(out["ok"], out)
                self.assertEqual(out["error"], "connect: ECONNREFUSED")
                self.assertIn(f"awf-shim: cannot load the engine: {core}", stderr)
                self.assertIn("failing closed", stderr)
                errors = self.events("error")
                self.assertEqual([e["where"] for e in errors], ["engine"], self.events())
                self.assertIn(why, errors[0]["message"])
                self.assert_nothing_went_direct()
        # The control: the same client without the shim connects that address directly, and the
        # trap sees it (so the checks above could fail).
        self.netclient("blocking", addr, super(ShimTest, self).env())
        self.assertEqual([a for a, _ in TRAP.connections()[self.direct_before:]], [addr])


class CopilotEndToEnd(ShimTest):
    """The arm64 Copilot CLI 1.0.102 in the root, under the aarch64 front with no proxy variable,
    answers a prompt on the fake GHE.com data-residency tenant behind a real Squid (native both:
    tests/e2e/firewall.py); the aarch64 awf-shim-trace's summary shows the tenant's hosts tunnelled."""

    @classmethod
    def setUpClass(cls):
        cls.fw = Firewall(os.path.join(FIXTURES.dir, "fw"), copilot=runtime("copilot-1.0.102-arm64")).__enter__()
        cls.addClassCleanup(cls.fw.__exit__, None, None, None)
        cls.proxy_url = cls.fw.squid.proxy_url

    def setUp(self):
        super().setUp()
        self.squid_mark = len(self.fw.squid.settled_log())
        self.tenant_mark = len(self.fw.tenant_requests())

    def run_cli(self, prompt="say hi", timeout=300):
        """firewall.Firewall.run_cli's environment and flags, the CLI run in the root under the aarch64
        front: HOME and the working directory fresh (no cached answers)."""
        workdir = tempfile.mkdtemp(prefix="cwd-", dir=self.home)
        return self.run_in_root(self.fw.cli_argv(prompt), self.env(**self.fw.cli_env(), SSL_CERT_FILE=None),
                                cwd=workdir, timeout=timeout, stdin=subprocess.DEVNULL)

    def test_the_arm64_cli_answers_through_squid_via_the_shim(self):
        self.assert_aarch64(self.fw.copilot)
        r = self.run_cli()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(ANSWER, r.stdout)
        seen = {(q["host"], q["path"].split("?")[0]): q for q in self.fw.tenant_requests()[self.tenant_mark:]}
        hosts = [f"api.{self.fw.tenant}", f"copilot-api.{self.fw.tenant}"]
        for key in zip(hosts, ("/copilot_internal/user", "/chat/completions")):
            self.assertIn(key, seen, sorted(seen))
            self.assertEqual((seen[key]["auth_scheme"], seen[key]["token_kind"]), ("Bearer", "github_pat_"))
        self.assertFalse([k for k in seen if k[1].startswith("/copilot_internal/v2/token")], "no token exchange")
        self.assert_summary_tunnelled(hosts, "copilot")
        opened = [t for t in self.events("tunnel") if t["result"] == "open"]
        for host in hosts:
            mine = [t for t in opened if t["target"] == f"{host}:443"]
            connects = [e for e in self.squid_entries("method", "url", "status", "squid_status", squid=self.fw.squid)
                        if e[:2] == ("CONNECT", f"{host}:443")]
            self.assertEqual(len(connects), len(mine), f"one Squid CONNECT per tunnel to {host}: {connects}")
            self.assertTrue(mine and all(e[2:] == (200, "TCP_TUNNEL") for e in connects), connects)


if __name__ == "__main__":
    unittest.main()
