"""Routing decisions against what the program itself would do (issue #15 item 9).

For each form a NO_PROXY entry can take, curl itself (run without the shim, told to use a fake
proxy) is the reference where curl and reqwest (the Copilot CLI's HTTP client) read the form
alike: a plain-HTTP origin and the fake proxy, both in this process, tell whether curl went
direct or through the proxy, and a client under the shim with the same NO_PROXY must be routed
the same way (the `connect` event's decision, and what answered). Where the two read a form
differently the shim's documented choice is asserted: a routed host is never bypassed on a
guess (README, "NO_PROXY forms"). Then the rules that hold whatever is configured: loopback and
the proxy are never tunnelled, by name too; the tenant URL's scheme is case-insensitive and its
credentials are skipped, never repeated; and with AWF_SHIM_DNS=system two routed names on one
address each get their own CONNECT.

Every process here runs in a mount namespace of its own where a hosts file of this module is
bound over /etc/hosts (that is how the test names resolve, and what the shim reads); the
origin's and the proxy's addresses are added to lo."""
import os
import socket
import socketserver
import subprocess
import tempfile
import threading
import unittest

import harness
from harness import PYTHON, TempDirTest, base_env, read_trace, run, shim_env, with_hosts_file, write_hosts_file

ORIGIN_IP = "192.0.2.77"     # TEST-NET-1: the origin, where direct connections to test names go
ORIGIN_IP6 = "2001:db8::77"
PROXY_IP = "192.0.2.78"      # a proxy that is not on loopback (named squid-proxy)
CDN_IP = "192.0.2.79"        # two routed names on one address (AWF_SHIM_DNS=system)
LOOPBACK_NAME_IP = "127.0.0.9"
ROUTED = "api.githubcopilot.com"
HOSTS = f"""127.0.0.1 localhost
{ORIGIN_IP} {ROUTED} githubcopilot.com api.github.com unrouted.example api.contoso-x.ghe.com api.contoso-y.ghe.com
{LOOPBACK_NAME_IP} loopname.example
{PROXY_IP} squid-proxy
{CDN_IP} a.githubcopilot.com b.githubcopilot.com
"""
ADDRESSES = [f"{ORIGIN_IP}/32", f"{PROXY_IP}/32", f"{CDN_IP}/32", f"{ORIGIN_IP6}/128"]

# A client that knows nothing about proxies: one request to argv[1]:argv[2], prints who answered.
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.partition(b"\r\n\r\n")[2].decode())
"""

# Thread one looks up argv[1], thread two then looks up argv[2] (the same address), thread one
# connects, then thread two: each must reach the proxy under its own name.
TWO_NAMES_CLIENT = r"""
import socket, sys, threading
port = int(sys.argv[3])
looked_up_a, looked_up_b, a_done = threading.Event(), threading.Event(), threading.Event()
def fetch(addr):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(4096):
        pass
def one():
    addr = socket.getaddrinfo(sys.argv[1], port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    looked_up_a.set()
    looked_up_b.wait()
    fetch(addr)
    a_done.set()
def two():
    looked_up_a.wait()
    addr = socket.getaddrinfo(sys.argv[2], port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    looked_up_b.set()
    a_done.wait()
    fetch(addr)
threads = [threading.Thread(target=f) for f in (one, two)]
for t in threads: t.start()
for t in threads: t.join()
print("ok")
"""


def _read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.partition(b"\r\n")[0].decode(errors="replace")


def _answer(conn, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


class _Origin(socketserver.BaseRequestHandler):
    def handle(self):
        _read_head(self.request)
        _answer(self.request, b"direct")


class _Proxy(socketserver.BaseRequestHandler):
    """CONNECT (the shim's tunnel) or an absolute-URI request (curl's plain proxying): recorded,
    and answered as the proxy."""

    def handle(self):
        line = _read_head(self.request)
        with PROXY_LOCK:
            PROXY_REQUESTS.append(line)
        if line.startswith("CONNECT "):
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _read_head(self.request)
        _answer(self.request, b"proxy")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


PROXY_REQUESTS = []
PROXY_LOCK = threading.Lock()
_servers = []
_hosts_file = None


def with_hosts(argv):
    """argv, run in a mount namespace of its own with this module's hosts file as /etc/hosts."""
    return with_hosts_file(_hosts_file, *argv)
ORIGIN_PORT = ORIGIN6_PORT = PROXY_PORT = None


def _serve(cls, address, handler):
    server = cls(address, handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _servers.append(server)
    return server.server_address[1]


def setUpModule():
    global ORIGIN_PORT, ORIGIN6_PORT, PROXY_PORT, _hosts_file
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        raise RuntimeError("test_routing_conventions adds addresses to lo: run it in a network namespace of its own")
    for a in ADDRESSES:
        subprocess.run(["ip", "addr", "add", a, "dev", "lo", *(["nodad"] if ":" in a else [])], check=True, timeout=10)
    fd, path = tempfile.mkstemp(prefix="awfshim-hosts-", dir="/tmp")
    os.close(fd)
    _hosts_file = write_hosts_file(path, HOSTS)
    ORIGIN_PORT = _serve(_Server, ("0.0.0.0", 0), _Origin)
    ORIGIN6_PORT = _serve(_Server6, (ORIGIN_IP6, 0), _Origin)
    PROXY_PORT = _serve(_Server, ("127.0.0.1", 0), _Proxy)
    _serve(_Server, (PROXY_IP, PROXY_PORT), _Proxy)


def tearDownModule():
    for server in _servers:
        server.shutdown()
        server.server_close()
    if _hosts_file:
        os.unlink(_hosts_file)
    for a in ADDRESSES:
        subprocess.run(["ip", "addr", "del", a, "dev", "lo"], timeout=10)


CURL = "curl"        # reference: what curl itself does
TUNNEL = "proxy"     # reference: the shim's documented choice where curl and reqwest differ
DIRECT = "direct"

# form, NO_PROXY/no_proxy, destination, AWF_SHIM_ROUTE=* (for addresses), reference. "{port}" is
# the origin's port. Destinations are routed (default routes) or, with `*`, addresses.
NO_PROXY_FORMS = [
    ("name covers itself", {"NO_PROXY": "githubcopilot.com"}, "githubcopilot.com", False, CURL),
    ("name covers subdomains", {"NO_PROXY": "githubcopilot.com"}, ROUTED, False, CURL),
    (".name covers subdomains", {"NO_PROXY": ".githubcopilot.com"}, ROUTED, False, CURL),
    (".name covers itself", {"NO_PROXY": ".githubcopilot.com"}, "githubcopilot.com", False, CURL),
    ("any case", {"NO_PROXY": "GitHubCopilot.COM"}, ROUTED, False, CURL),
    ("blanks and empty items", {"NO_PROXY": " , githubcopilot.com ,"}, ROUTED, False, CURL),
    ("a name that only ends alike", {"NO_PROXY": "copilot.com,notgithubcopilot.com"}, ROUTED, False, CURL),
    ("*.name", {"NO_PROXY": "*.githubcopilot.com"}, ROUTED, False, CURL),
    ("*.name, the apex", {"NO_PROXY": "*.githubcopilot.com"}, "githubcopilot.com", False, CURL),
    ("* alone", {"NO_PROXY": "*"}, ROUTED, False, CURL),
    ("* in a list", {"NO_PROXY": "localhost,*"}, ROUTED, False, CURL),
    ("* first in a list", {"NO_PROXY": "*,localhost"}, ROUTED, False, CURL),
    ("* with blanks", {"NO_PROXY": " * "}, ROUTED, False, CURL),
    ("name:port, this port", {"NO_PROXY": f"{ROUTED}:{{port}}"}, ROUTED, False, CURL),
    ("name:port, another port", {"NO_PROXY": f"{ROUTED}:1"}, ROUTED, False, CURL),
    ("a URL", {"NO_PROXY": "http://githubcopilot.com"}, ROUTED, False, CURL),
    ("no_proxy alone", {"no_proxy": "githubcopilot.com"}, ROUTED, False, CURL),
    ("NO_PROXY names it, no_proxy does not", {"NO_PROXY": "githubcopilot.com", "no_proxy": "x.example"}, ROUTED, False,
     CURL),
    # curl bypasses, reqwest does not: the shim tunnels.
    ("name. (trailing dot)", {"NO_PROXY": "githubcopilot.com."}, ROUTED, False, TUNNEL),
    ("blank-separated names", {"NO_PROXY": "x.example githubcopilot.com"}, ROUTED, False, TUNNEL),
    ("no_proxy names it, NO_PROXY does not", {"NO_PROXY": "x.example", "no_proxy": "githubcopilot.com"}, ROUTED, False,
     TUNNEL),
    # Addresses: tunnelled only with AWF_SHIM_ROUTE=*, so that is where they are compared.
    ("address", {"NO_PROXY": ORIGIN_IP}, ORIGIN_IP, True, CURL),
    ("IPv4 range", {"NO_PROXY": "192.0.2.0/24"}, ORIGIN_IP, True, CURL),
    ("IPv4 range, /0", {"NO_PROXY": "198.51.100.7/0"}, ORIGIN_IP, True, CURL),
    ("IPv4 range, bad prefix", {"NO_PROXY": "192.0.2.0/33"}, ORIGIN_IP, True, CURL),
    ("address:port", {"NO_PROXY": f"{ORIGIN_IP}:{{port}}"}, ORIGIN_IP, True, CURL),
    ("an address does not cover a name", {"NO_PROXY": ORIGIN_IP}, ROUTED, False, CURL),
    ("IPv6 address", {"NO_PROXY": ORIGIN_IP6}, ORIGIN_IP6, True, CURL),
    ("[IPv6 address]", {"NO_PROXY": f"[{ORIGIN_IP6}]"}, ORIGIN_IP6, True, CURL),
    ("IPv6 range", {"NO_PROXY": "2001:db8::/32"}, ORIGIN_IP6, True, CURL),
]


def shimmed(**extra):
    """The environment of CLIENT under the shim (python3 only: not unshare, sh or mount)."""
    return shim_env(**{"AWF_SHIM": "1", "AWF_SHIM_ONLY": "python3", "HTTPS_PROXY": f"http://127.0.0.1:{PROXY_PORT}",
                       **extra})


class Conventions(TempDirTest):
    runs = 0

    def shim(self, host, port, extra):
        """Runs CLIENT under the shim: (who answered, its one connect event, the run)."""
        Conventions.runs += 1
        trace = self.path(f"trace-{Conventions.runs}.jsonl")
        r = run(with_hosts([PYTHON, "-c", CLIENT, host, str(port)]), env=shimmed(AWF_SHIM_TRACE=trace, **extra))
        connects = [e for e in read_trace(trace) if e["ev"] == "connect"]
        self.assertEqual(len(connects), 1, f"{connects}\n{r.stderr}")
        return r.stdout.strip() or r.stderr.strip(), connects[0], r

    def curl(self, host, port, no_proxy):
        url_host = f"[{host}]" if ":" in host else host
        r = run(with_hosts(["curl", "-sS", "-m", "10", "--proxy", f"http://127.0.0.1:{PROXY_PORT}",
                            f"http://{url_host}:{port}/"]), env=base_env(**no_proxy))
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_no_proxy_forms_route_like_curl_or_never_bypass_a_routed_host(self):
        for form, no_proxy, host, star, reference in NO_PROXY_FORMS:
            with self.subTest(form=form, no_proxy=no_proxy, host=host):
                port = ORIGIN6_PORT if ":" in host else ORIGIN_PORT
                no_proxy = {k: v.format(port=port) for k, v in no_proxy.items()}
                want = self.curl(host, port, no_proxy) if reference == CURL else reference
                got, connect, _ = self.shim(host, port, {**no_proxy, **({"AWF_SHIM_ROUTE": "*"} if star else {})})
                self.assertEqual(got, want, f"reference: {want}, the shim: {got} "
                                            f"({connect['decision']}: {connect['reason']})")
                self.assertEqual(connect["decision"] == "tunnel", want == TUNNEL, connect)

    def test_a_no_proxy_address_does_not_cover_a_routed_name_with_system_dns(self):
        no_proxy = {"NO_PROXY": ORIGIN_IP}
        self.assertEqual(self.curl(ROUTED, ORIGIN_PORT, no_proxy), TUNNEL)
        got, connect, _ = self.shim(ROUTED, ORIGIN_PORT, {**no_proxy, "AWF_SHIM_DNS": "system"})
        self.assertEqual((got, connect["decision"]), (TUNNEL, "tunnel"), connect)

    def connects_seen_by_proxy(self, since):
        with PROXY_LOCK:
            return [line for line in PROXY_REQUESTS[since:] if line.startswith("CONNECT ")]

    def test_loopback_and_the_proxy_are_never_tunnelled_by_name_either(self):
        for host, port, extra, decision, reason in [
            ("loopname.example", ORIGIN_PORT, {}, "bypass", "bypassed address"),
            ("squid-proxy", PROXY_PORT, {"HTTPS_PROXY": f"http://{PROXY_IP}:{PROXY_PORT}"}, "direct",
             "the application talks to the proxy itself"),
        ]:
            with self.subTest(host=host):
                with PROXY_LOCK:
                    since = len(PROXY_REQUESTS)
                _, connect, _ = self.shim(host, port, {"AWF_SHIM_ROUTE": "*", **extra})
                self.assertEqual((connect["decision"], connect["reason"]), (decision, reason), connect)
                self.assertEqual(self.connects_seen_by_proxy(since), [])
        # *.localhost is loopback by definition (RFC 6761): never faked, so never tunnelled.
        trace = self.path("localhost.jsonl")
        with PROXY_LOCK:
            since = len(PROXY_REQUESTS)
        run(with_hosts([PYTHON, "-c", CLIENT, "app.localhost", str(ORIGIN_PORT)]),
            env=shimmed(AWF_SHIM_ROUTE="*", AWF_SHIM_TRACE=trace))
        dns = [e for e in read_trace(trace) if e["ev"] == "dns"]
        self.assertEqual([(e["host"], e["mode"]) for e in dns], [("app.localhost", "passthrough")])
        self.assertEqual(self.connects_seen_by_proxy(since), [])

    def test_tenant_url_scheme_in_any_case_routes_the_tenant(self):
        got, connect, _ = self.shim("api.contoso-x.ghe.com", ORIGIN_PORT,
                                    {"GITHUB_SERVER_URL": "HTTPS://Contoso-X.ghe.com/"})
        self.assertEqual((got, connect["decision"], connect.get("host")), (TUNNEL, "tunnel", "api.contoso-x.ghe.com"))

    def test_tenant_url_credentials_holding_a_slash_are_skipped_and_never_repeated(self):
        credential = f"x-access-token:{harness.SENTINEL_MARK}/Tenant0Credential"
        got, connect, r = self.shim("api.contoso-y.ghe.com", ORIGIN_PORT,
                                    {"GITHUB_SERVER_URL": f"https://{credential}@contoso-y.ghe.com/"})
        self.assertEqual((got, connect["decision"]), (TUNNEL, "tunnel"))
        trace = self.path(f"trace-{Conventions.runs}.jsonl")
        init = next(e for e in read_trace(trace) if e["ev"] == "init")
        self.assertEqual(init["settings"]["route"][-2:], ["contoso-y.ghe.com", "*.contoso-y.ghe.com"])
        self.assertEqual(init["errors"], [])
        for secret in (credential, harness.SENTINEL_MARK):
            self.assertNotIn(secret, r.stderr)
            with open(trace) as f:
                self.assertNotIn(secret, f.read())
        # Unreadable: an error that names the variable and repeats nothing of the value.
        trace = self.path("bad-tenant.jsonl")
        r = run(with_hosts([PYTHON, "-c", "import socket; socket.getaddrinfo('localhost', 1)"]),
                env=shimmed(AWF_SHIM_TRACE=trace, GITHUB_SERVER_URL=f"https://{credential}@/"))
        self.assertIn("awf-shim: GITHUB_SERVER_URL: ", r.stderr)
        with open(trace) as f:
            written = r.stderr + f.read()
        self.assertIn('"where":"GITHUB_SERVER_URL"', written)
        self.assertNotIn(harness.SENTINEL_MARK, written)
        self.assertNotIn("x-access-token", written)

    def test_system_dns_two_routed_names_on_one_address_each_get_their_own_connect(self):
        trace = self.path("two-names.jsonl")
        with PROXY_LOCK:
            since = len(PROXY_REQUESTS)
        r = run(with_hosts([PYTHON, "-c", TWO_NAMES_CLIENT, "a.githubcopilot.com", "b.githubcopilot.com",
                            str(ORIGIN_PORT)]),
                env=shimmed(AWF_SHIM_DNS="system", AWF_SHIM_TRACE=trace))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"), r.stderr)
        self.assertEqual(self.connects_seen_by_proxy(since),
                         [f"CONNECT a.githubcopilot.com:{ORIGIN_PORT} HTTP/1.1",
                          f"CONNECT b.githubcopilot.com:{ORIGIN_PORT} HTTP/1.1"])
        connects = [(e["addr"].rsplit(":", 1)[0], e["host"]) for e in read_trace(trace) if e["ev"] == "connect"]
        self.assertEqual(connects, [(CDN_IP, "a.githubcopilot.com"), (CDN_IP, "b.githubcopilot.com")])


if __name__ == "__main__":
    unittest.main()
