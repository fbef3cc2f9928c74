"""The TLS plaintext tap: for clients that link OpenSSL dynamically (curl, python), through the
front's interposed SSL_* symbols; for Node.js, whose executable calls its own OpenSSL, through
patched function entries. The trace gets one `http` event per exchange — never a credential, never
a body — with bounded memory."""
import json
import os
import platform
import unittest
import urllib.parse

import harness
import net
import secrets_scan
from harness import PROGRAMS, PYTHON, SENTINEL_HEADER_TOKEN, TempDirTest, read_trace, run, runtime, shim_env

W = CA = PROXY = None
_fixture = net.TlsUpstreamBehindProxy("awfshim-tap-")
SECRET = SENTINEL_HEADER_TOKEN
# Why short_ssl's SSL_write cannot be patched, in each architecture's words (x86-64: 3 bytes, where
# the jump needs 5; aarch64: a lone `ret`, which no patch may move). test_arm64_tap checks aarch64's.
SHORT_SSL_REFUSAL = {"x86_64": "SSL_write: too short to patch: its code ends at +3",
                     "aarch64": "SSL_write: at +0: an indirect branch or return at +0"}


def setUpModule():
    global W, CA, PROXY
    _fixture.__enter__()
    W, CA, PROXY = _fixture.dir, _fixture.ca, _fixture.proxy


def tearDownModule():
    _fixture.__exit__(None, None, None)


class Tap(TempDirTest):
    def env(self, **extra):
        self.trace = self.path("trace.jsonl")
        return shim_env(AWF_SHIM="1", AWF_SHIM_PROXY=f"http://127.0.0.1:{PROXY.ports[0]}", GH_HOST=net.TENANT,
                        AWF_SHIM_TRACE=self.trace, SSL_CERT_FILE=CA, **extra)

    def http_events(self):
        return [e for e in read_trace(self.trace) if e["ev"] == "http"]

    def curl(self, *args, **env):
        r = run(["curl", "-sS", "--http1.1", "--cacert", CA, "-o", "/dev/null", *args], env=self.env(**env))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_curl_request_and_response_heads_with_secrets_redacted(self):
        self.curl(f"https://{net.API}/repos/x?access_token={SECRET}&per_page=100",
                  "-H", f"Authorization: Bearer {SECRET}", "-H", "Cookie: session=abc")
        [e] = self.http_events()
        self.assertEqual((e["method"], e["host"], e["sni"], e["status"]), ("GET", net.API, net.API, 200))
        self.assertEqual(e["path"], "/repos/x?access_token=***&per_page=100")
        self.assertEqual(e["content_type"], "application/json")
        self.assertGreater(e["resp_bytes"], 50)
        self.assertGreaterEqual(e["ms"], e["ttfb_ms"])
        text = open(self.trace).read()
        self.assertNotIn(SECRET[len("github_pat_"):], text)
        self.assertNotIn("session=abc", text)

    def test_secrets_in_any_encoding_of_a_target_never_reach_the_trace(self):
        """Issue #16: secrets behind percent-escapes or percent-encoded themselves (in part, in
        either case, twice), under secret names however written, in JWTs, bot tokens and path
        parameters, and in the userinfo of an absolute-form target with a mixed-case scheme."""
        password = urllib.parse.quote(harness.SENTINEL_PROXY_PASSWORD, safe="")  # no token shape
        every_byte = "".join(f"%{b:02x}" for b in SECRET.encode())
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0." + SECRET
        cases = [
            (f"/cb?next=%2Fcb%3Faccess_token%3D{SECRET}&page=2", "/cb?next=%2Fcb%3Faccess_token%3D***&page=2"),
            (f"/search?q=token%3A{SECRET}", "/search?q=token%3Agithub_pat_***"),
            (f"/x?q=%67{SECRET[1:]}", "/x?q=github_pat_***"),
            (f"/x?q={SECRET.replace('_', '%5f')}", "/x?q=github_pat_***"),
            (f"/x?q={every_byte}", "/x?q=github_pat_***"),
            (f"/x?q={every_byte.replace('%', '%25')}", "/x?q=github_pat_***"),
            (f"/x?access%5Ftoken={password}&page=2", "/x?access%5Ftoken=***&page=2"),
            (f"/x?%61ccess_token={password}", "/x?%61ccess_token=***"),
            (f"/x?X-API-KEY={password}&Subscription-Key={password}&pwd={password}",
             "/x?X-API-KEY=***&Subscription-Key=***&pwd=***"),
            (f"/x?next=%2Fcb%3Fpassword%3D{urllib.parse.quote(password, safe='')}%26page%3D2",
             "/x?next=%2Fcb%3Fpassword%3D***%26page%3D2"),
            (f"/app;jsessionid={password}/next", "/app;jsessionid=***/next"),
            (f"/bot123456789:{SECRET}/getMe", "/bot***/getMe"),
            (f"/oauth/token?assertion={jwt}&x=1", "/oauth/token?assertion=***&x=1"),
            (f"/x/{jwt}/status", "/x/jwt:***/status"),
            (f"/x?next=https%3A%2F%2Fawf-agent%3A{urllib.parse.quote(password, safe='')}%40h%2F",
             "/x?next=https%3A%2F%2F***%40h%2F"),
        ]
        args = ["--path-as-is", f"https://{net.API}{cases[0][0]}"]
        for target, _ in cases[1:]:
            args += ["-o", "/dev/null", f"https://{net.API}{target}"]
        # One more request, in absolute form: the userinfo goes whatever the scheme's case.
        args += ["--next", "--http1.1", "--cacert", CA, "-o", "/dev/null",
                 "--request-target", f"Https://awf-agent:{password}@{net.API}/abs?page=2", f"https://{net.API}/"]
        self.curl(*args)
        events = self.http_events()
        self.assertEqual([e["path"] for e in events], [want for _, want in cases] + ["/abs?page=2"])
        self.assertEqual({(e["host"], e["status"]) for e in events}, {(net.API, 200)})
        # The run's secrets scan searches this trace too, at the end; this says which test leaked.
        secrets = [secrets_scan.Secret(v, label) for v, label in harness.SENTINELS.items()]
        hits, _ = secrets_scan.scan_file(self.trace, secrets)
        self.assertEqual(hits, [], "\n".join(map(str, hits)))

    def test_chat_request_body_is_summarized_never_copied(self):
        body = json.dumps({"model": "gpt-5-mini", "stream": True, "max_tokens": 64,
                           "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "the secret word is swordfish"}],
                           "tools": [{"type": "function", "function": {"name": f"t{i}"}} for i in range(19)]})
        self.curl(f"https://{net.API}/chat/completions", "-H", "Content-Type: application/json", "--data-binary", body)
        [e] = self.http_events()
        self.assertEqual((e["method"], e["path"], e["req_bytes"]), ("POST", "/chat/completions", len(body)))
        self.assertEqual(e["request_summary"], {"model": "gpt-5-mini", "stream": True, "messages": 2, "tools": 19,
                                                "max_tokens": 64})
        self.assertNotIn("swordfish", open(self.trace).read())

    def test_python_urllib_loads_libssl_after_start_and_is_still_tapped(self):
        code = f"import urllib.request; urllib.request.urlopen('https://{net.API}/py').read()"
        r = run([PYTHON, "-c", code], env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in self.http_events()], [("GET", "/py", 200)])

    def node(self, script, *args, **env):
        r = run([runtime("node-20"), "-e", script, *args], env=self.env(NODE_EXTRA_CA_CERTS=CA, **env))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r.stdout

    # Three requests on one keep-alive connection; Node writes the first one from JavaScript that
    # runs inside SSL_read (the handshake-done callback), the case a re-entry guard would lose.
    NODE_GETS = """
        const https = require('https');
        const agent = new https.Agent({keepAlive: true, maxSockets: 1});
        const get = (i) => https.get(process.argv[1] + i, {agent}, (res) => {
          let n = 0; res.on('data', (d) => n += d.length);
          res.on('end', () => { console.log(res.statusCode, n); i < 3 ? get(i + 1) : agent.destroy(); });
        });
        get(1);
    """

    def tap_events(self):
        return [e for e in read_trace(self.trace) if e["ev"] == "tap"]

    def test_node_static_openssl_is_patched_and_sees_the_first_request(self):
        out = self.node(self.NODE_GETS, f"https://{net.API}/node/")
        self.assertEqual(len(out.split("\n")), 4, out)
        [tap] = self.tap_events()
        self.assertEqual((tap["mode"], tap["outcome"]), ("patch", "patched"))
        self.assertEqual(tap["functions"], "SSL_write,SSL_write_ex,SSL_read,SSL_read_ex,SSL_free")
        events = self.http_events()
        self.assertEqual([(e["method"], e["path"], e["status"], e["sni"]) for e in events],
                         [("GET", f"/node/{i}", 200, net.API) for i in (1, 2, 3)])
        self.assertEqual(len([e for e in read_trace(self.trace) if e["ev"] == "tunnel"]), 1)

    def test_node_tap_off_patches_nothing(self):
        self.node(self.NODE_GETS, f"https://{net.API}/node/", AWF_SHIM_TAP="off")
        self.assertEqual(self.tap_events(), [])
        self.assertEqual(self.http_events(), [])
        self.assertEqual(len([e for e in read_trace(self.trace) if e["ev"] == "tunnel"]), 1)

    def test_an_unpatchable_executable_runs_untouched_and_the_trace_says_why(self):
        r = run([os.path.join(PROGRAMS, "short_ssl")], env=self.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "SSL_write=0 SSL_read-entry=own lookup=0\n")  # all or nothing
        [tap] = self.tap_events()
        self.assertEqual((tap["outcome"], tap["reason"]), ("refused", SHORT_SSL_REFUSAL[platform.machine()]))
        self.assertTrue([e for e in read_trace(self.trace) if e["ev"] == "dns"], "the engine runs on")

    def test_keep_alive_connection_carries_several_exchanges(self):
        self.curl(f"https://{net.API}/a", "-o", "/dev/null", f"https://{net.API}/b", "-o", "/dev/null",
                  f"https://{net.API}/c")
        self.assertEqual([e["path"] for e in self.http_events()], ["/a", "/b", "/c"])
        self.assertEqual(len([e for e in read_trace(self.trace) if e["ev"] == "tunnel"]), 1)

    def test_tap_off_records_no_http_events(self):
        self.curl(f"https://{net.API}/quiet", AWF_SHIM_TAP="off")
        self.assertEqual(self.http_events(), [])
        self.assertTrue([e for e in read_trace(self.trace) if e["ev"] == "tunnel"])

    def test_large_bodies_are_counted_with_bounded_memory(self):
        upload = self.path("upload.bin")
        with open(upload, "wb") as f:
            f.write(os.urandom(10 * 1024 * 1024))
        # curl under a python parent that reports the child's peak RSS.
        code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        def peak_kb(**env):
            argv = ["curl", "-sS", "--http1.1", "--cacert", CA, "-o", "/dev/null",
                    "--data-binary", f"@{upload}", f"https://{net.API}/upload",
                    "--next", "--http1.1", "--cacert", CA, "-o", "/dev/null",
                    f"https://{net.API}/chunked/{100 * 1024 * 1024}"]
            r = run([PYTHON, "-c", code, *argv], env=self.env(**env), timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            return int(r.stdout.strip())
        off = peak_kb(AWF_SHIM_TAP="off")
        on = peak_kb()
        events = self.http_events()
        self.assertEqual([(e["path"], e["req_bytes"]) for e in events], [("/upload", 10 * 1024 * 1024),
                                                                        (f"/chunked/{100 * 1024 * 1024}", 0)])
        self.assertEqual(events[1]["resp_bytes"], 100 * 1024 * 1024)
        self.assertLess(on - off, 8 * 1024, f"the tap's memory must not grow with the bodies (on {on} kB, off {off} kB)")


if __name__ == "__main__":
    unittest.main()
