"""Facts the trace must get right (issue #16): bytes a refused tunnel never carried, the `fd` that
ties an `http` event to its connection, responses read before their request's write returned,
the process's own TLS server, and exchanges still open when the process exits."""
import json
import os
import subprocess
import unittest

import net
from harness import PROGRAMS, PYTHON, TempDirTest, read_trace, run, runtime, shim_env

W = CA = PROXY = DENY = None
_fixture = net.TlsUpstreamBehindProxy("awfshim-facts-")


def setUpModule():
    global W, CA, PROXY, DENY
    _fixture.__enter__()
    W, CA, PROXY = _fixture.dir, _fixture.ca, _fixture.proxy
    DENY = net.connect_proxy(W, name="deny", fault="deny").__enter__()


def tearDownModule():
    DENY.__exit__(None, None, None)
    _fixture.__exit__(None, None, None)


class Facts(TempDirTest):
    def env(self, proxy=None, **extra):
        self.trace = self.path("trace.jsonl")
        return shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=f"http://127.0.0.1:{(proxy or PROXY).ports[0]}",
                        GH_HOST=net.TENANT, AWF_SHIM_TRACE=self.trace, SSL_CERT_FILE=CA, **extra)

    def events(self, ev):
        return [e for e in read_trace(self.trace) if e["ev"] == ev]

    # ---- bytes_out counts what reached the target -------------------------------------------

    # A non-blocking client writes while the shim's CONNECT is out (the proxy holds its answer
    # until the client opens the gate): the bytes are held and reported written; then the proxy
    # refuses the tunnel (403: the target's address is not loopback).
    HELD_THEN_REFUSED = (
        "import errno, json, select, socket, sys\n"
        "s = socket.socket(); s.setblocking(False)\n"
        "rc = s.connect_ex((sys.argv[1], 443))\n"
        "sent = s.send(b'x' * 100)\n"
        "open(sys.argv[2], 'w').close()\n"
        "select.select([s], [], [], 10)\n"
        "try:\n"
        "    got = s.recv(100)\n"
        "except OSError as e:\n"
        "    got = errno.errorcode[e.errno]\n"
        "print(json.dumps({'connect': errno.errorcode[rc], 'sent': sent, 'recv': got}))\n")

    def test_bytes_held_for_a_refused_tunnel_never_count_out(self):
        gate = self.path("gate")
        proxy = net.connect_proxy(self.dir, name="gated", maps=["*=192.0.2.1"], fault=f"gate={gate}").__enter__()
        self.addCleanup(proxy.__exit__, None, None, None)
        r = run([PYTHON, "-c", self.HELD_THEN_REFUSED, net.API, gate], env=self.env(proxy))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"connect": "EINPROGRESS", "sent": 100, "recv": "ECONNREFUSED"})
        [tunnel] = self.events("tunnel")
        self.assertEqual((tunnel["result"], tunnel["status"]), ("failed", 403))
        self.assertEqual([(e["status"], e["early_bytes"]) for e in net.proxy_log(proxy.log)], [(403, 0)])
        [close] = self.events("close")
        # Neither the held bytes nor the proxy's error page are the target's traffic.
        self.assertEqual((close["bytes_out"], close["bytes_in"]), (0, 0))

    def test_curl_refused_counts_nothing(self):
        r = run(["curl", "-sS", "--http1.1", "--cacert", CA, "-o", "/dev/null", f"https://{net.API}/denied"],
                env=self.env(DENY))
        self.assertNotEqual(r.returncode, 0)
        closes = self.events("close")
        self.assertTrue(closes)
        self.assertEqual([(c["bytes_out"], c["bytes_in"]) for c in closes], [(0, 0)] * len(closes))

    # ---- fd, and a response read before its request's write returned --------------------------

    def test_reader_and_writer_threads_on_one_ssl_pair_every_response_with_its_request(self):
        paths = ["/first", "/second-and-longer", "/third"]
        r = run([os.path.join(PROGRAMS, "threaded_ssl"), net.API, "443", *paths], env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["responses"], 3)
        http = self.events("http")
        # The upstream's body names the path: a response paired with another request would show
        # that request's neighbour's length.
        self.assertEqual([(e["method"], e["path"], e["status"], e.get("problem")) for e in http],
                         [("GET", p, 200, None) for p in paths])
        self.assertEqual([e["resp_bytes"] - http[0]["resp_bytes"] for e in http], [len(p) - len(paths[0]) for p in paths])
        for e in http:
            self.assertGreaterEqual(e["ttfb_ms"], 0)
            self.assertLess(e["ttfb_ms"], 300, "dated from when SSL_write began, answered before it returned")
        # fd: the socket under the SSL*, the one the connect and close events name.
        self.assertEqual({e["fd"] for e in http}, {out["fd"]})
        self.assertEqual([(e["fd"], e["decision"]) for e in self.events("connect")], [(out["fd"], "tunnel")])

    # ---- the process's own TLS server --------------------------------------------------------

    SERVER = (
        "import http.server, socket, ssl, sys\n"
        "socket.getaddrinfo('localhost', 443)\n"  # the engine loads on the first lookup
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '6'); self.end_headers()\n"
        "        self.wfile.write(b'hello\\n')\n"
        "    def log_message(self, *a): pass\n"
        "srv = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
        "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
        "print(srv.server_address[1], flush=True)\n"
        "srv.handle_request()\n")

    def test_a_tls_server_in_the_process_is_not_taken_for_a_client(self):
        ca_dir = os.path.join(W, "ca")
        server = subprocess.Popen([PYTHON, "-c", self.SERVER, os.path.join(ca_dir, "server.pem"),
                                   os.path.join(ca_dir, "server.key")],
                                  env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(server.kill)
        port = server.stdout.readline().strip()
        self.assertTrue(port, server.stderr.read() if server.poll() is not None else "no port")
        # The client is outside the shim.
        r = run(["curl", "-sS", "--http1.1", "--cacert", CA, "--resolve", f"{net.API}:{port}:127.0.0.1",
                 f"https://{net.API}:{port}/served"])
        self.assertEqual((r.returncode, r.stdout), (0, "hello\n"), r.stderr)
        self.assertEqual(server.wait(timeout=30), 0, server.stderr.read())
        [init] = self.events("init")
        self.assertEqual(init["settings"]["tap"], "auto")
        self.assertEqual(self.events("http"), [])

    # ---- exchanges open at exit ----------------------------------------------------------------

    CHAT = json.dumps({"model": "gpt-5-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})

    def assert_interrupted_stream(self, e):
        self.assertEqual((e["method"], e["path"], e["status"], e["sse"], e["incomplete"]),
                         ("POST", "/sse/50/chat/completions", 200, True, True))
        self.assertEqual(e["problem"], "the process exited before the response ended")
        self.assertEqual(e["request_summary"], {"model": "gpt-5-mini", "stream": True, "messages": 1})
        self.assertGreater(e["resp_bytes"], 0)
        self.assertGreaterEqual(e["ms"], e["ttfb_ms"])
        self.assertNotIn("usage", e)

    # The Copilot CLI interrupted mid-answer: Node's process.exit() never frees its SSL objects.
    NODE_EXIT = """
        const https = require('https');
        const req = https.request(process.argv[1], {method: 'POST', headers: {'content-type': 'application/json'}},
          (res) => res.once('data', () => process.exit(0)));
        req.end(process.argv[2]);
    """

    def test_node_exiting_mid_stream_reports_the_exchange_incomplete(self):
        r = run([runtime("node-20"), "-e", self.NODE_EXIT, f"https://{net.API}/sse/50/chat/completions", self.CHAT],
                env=self.env(NODE_EXTRA_CA_CERTS=CA))
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        [e] = self.events("http")
        self.assert_interrupted_stream(e)
        self.assertNotIn("fd", e)  # Node's OpenSSL works on memory BIOs: no socket to name
        [close] = self.events("close")
        self.assertTrue(close["open_at_exit"])

    # exit() (not Python's own finalization, which would free the socket first).
    PYTHON_EXIT = (
        "import ctypes, http.client, sys\n"
        "c = http.client.HTTPSConnection(sys.argv[1])\n"
        "c.request('POST', '/sse/50/chat/completions', body=sys.argv[2], headers={'Content-Type': 'application/json'})\n"
        "r = c.getresponse()\n"
        "r.read(10)\n"
        "print(c.sock.fileno(), flush=True)\n"
        "ctypes.CDLL(None).exit(0)\n")

    def test_python_exiting_mid_stream_reports_the_exchange_incomplete_with_its_fd(self):
        r = run([PYTHON, "-c", self.PYTHON_EXIT, net.API, self.CHAT], env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        [e] = self.events("http")
        self.assert_interrupted_stream(e)
        self.assertEqual(e["fd"], int(r.stdout))
        [close] = self.events("close")
        self.assertEqual((close["fd"], close["open_at_exit"]), (e["fd"], True))

    def test_a_finished_exchange_is_not_incomplete(self):
        r = run(["curl", "-sS", "--http1.1", "--cacert", CA, "-o", "/dev/null", f"https://{net.API}/sse/2/x"],
                env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        [e] = self.events("http")
        self.assertEqual((e["path"], e["status"], e["usage"]["output_tokens"]), ("/sse/2/x", 200, 2))
        self.assertNotIn("incomplete", e)
        self.assertNotIn("problem", e)
        self.assertIsInstance(e["fd"], int)


if __name__ == "__main__":
    unittest.main()
