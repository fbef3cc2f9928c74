"""The preloaded front: what it exports, what it depends on, and that it changes nothing where
the shim is inert — checked on real programs."""
import http.server
import json
import os
import re
import subprocess
import threading
import unittest
import urllib.parse

from harness import (ENGINE, FRONT, PROGRAMS, PYTHON, SENTINEL_MARK, SENTINEL_PROXY_PASSWORD, SENTINEL_PROXY_USER,
                     TempDirTest, base_env, proxy_url, read_trace, run, shim_env)

HOOKS_DEF = os.path.join(os.path.dirname(__file__), "..", "..", "include", "awfshim", "hooks.def")


def hooked_symbols():
    text = open(HOOKS_DEF).read()
    return set(re.findall(r"^AWF_HOOK(?:_CUSTOM|_SSL)?\([^,]+,\s*(\w+)", text, re.M))


def strace_calls(cmd, env):
    """(syscall names, opened paths) of a run under strace -f."""
    out = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/stderr", *cmd], env=env, capture_output=True,
                         text=True, timeout=120).stderr
    names, opened = [], []
    for line in out.splitlines():
        m = re.match(r"(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\((.*)", line)
        if not m:
            continue
        names.append(m.group(1))
        if m.group(1) in ("open", "openat"):
            p = re.search(r'"([^"]*)"', m.group(2))
            if p:
                opened.append(p.group(1))
    return names, opened


# What loading one more shared object costs in syscalls.
LOADER_CALLS = {"openat", "read", "pread64", "newfstatat", "fstat", "mmap", "mprotect", "close", "munmap"}


class LocalHttp:
    """A plain HTTP server on loopback for comparing client output with and without the front."""

    def __enter__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = f"hello {self.path}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *a):
        self.server.shutdown()
        self.server.server_close()


class Exports(unittest.TestCase):
    def test_front_exports_exactly_the_hooked_symbols(self):
        out = run(["nm", "-D", "--defined-only", FRONT], check=True).stdout
        exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
        self.assertEqual(exported, hooked_symbols())

    def test_front_needs_libc_alone(self):
        out = run(["readelf", "-d", FRONT], check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
        self.assertEqual(needed, ["libc.so.6"])

    def test_engine_exports_only_its_entry_point(self):
        out = run(["nm", "-D", "--defined-only", ENGINE], check=True).stdout
        exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
        self.assertEqual(exported, {"awfshim_engine_attach"})

    def test_engine_does_not_link_openssl(self):
        out = run(["readelf", "-d", ENGINE], check=True).stdout
        self.assertNotRegex(out, r"libssl|libcrypto")


class InertMode(TempDirTest):
    def test_no_extra_syscalls_beyond_loading_the_front(self):
        cmd = ["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:9/"]
        base_names, base_open = strace_calls(cmd, base_env())
        for label, env in [("unset", shim_env()), ("zero", shim_env(AWF_SHIM="0"))]:
            names, opened = strace_calls(cmd, env)
            extra_open = [p for p in opened if p not in base_open]
            self.assertEqual(extra_open, [FRONT], label)
            extra_kinds = set(names) - set(base_names)
            self.assertFalse(extra_kinds - LOADER_CALLS, f"{label}: unexpected syscalls {extra_kinds - LOADER_CALLS}")
            for call in set(base_names) - LOADER_CALLS:
                self.assertEqual(names.count(call), base_names.count(call), f"{label}: count of {call}")

    def test_out_of_scope_process_loads_nothing(self):
        trace = self.path("t.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_ONLY="copilot,node", AWF_SHIM_TRACE=trace,
                       HTTPS_PROXY="http://127.0.0.1:3128")
        code = "import socket; socket.getaddrinfo('localhost', 80); print(open('/proc/self/maps').read())"
        r = run([PYTHON, "-c", code], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("libawfshim.so", r.stdout)
        self.assertNotIn("libawfshim-core.so", r.stdout)
        self.assertFalse(os.path.exists(trace))
        self.assertEqual(r.stderr, "")

    def test_active_process_that_never_uses_the_network_loads_nothing(self):
        trace = self.path("t.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=trace, HTTPS_PROXY="http://127.0.0.1:3128")
        r = run(["bash", "-c", "ls / >/dev/null; cat /proc/self/maps; ls /proc/self/task | wc -l"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("libawfshim.so", r.stdout)
        self.assertNotIn("libawfshim-core.so", r.stdout)
        self.assertEqual(r.stdout.strip().splitlines()[-1], "1", "no thread started")
        self.assertFalse(os.path.exists(trace), "no file written")

    def test_only_a_routed_name_starts_a_thread(self):
        # The engine loads at the first lookup, routed or not, but only a routed name starts the
        # pump: a process that never resolves one keeps its single thread (what unshare(2) and
        # setns(2) into a user namespace require; README, Host safety).
        env = shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", GH_HOST="contoso-aw.ghe.com")
        code = ("import os, socket, time\n"
                "def state(threads):\n"
                "    for _ in range(200):  # the pump names itself once it runs\n"
                "        comms = [open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')]\n"
                "        if len(comms) >= threads and 'python3' not in comms[1:]: break\n"
                "        time.sleep(0.01)\n"
                "    return 'libawfshim-core.so' in open('/proc/self/maps').read(), sorted(comms)\n"
                "socket.getaddrinfo('localhost', 80)\n"
                "print(state(1))\n"
                "socket.getaddrinfo('api.contoso-aw.ghe.com', 443)\n"
                "print(state(2))\n")
        r = run([PYTHON, "-c", code], env=env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout.splitlines(), ["(True, ['python3'])", "(True, ['awfshim-pump', 'python3'])"])

    def test_environment_is_unchanged(self):
        env = shim_env(AWF_SHIM="1", HTTPS_PROXY="http://127.0.0.1:3128")
        # os.environ is Python's copy from before the engine loaded (at the first name lookup):
        # read libc's environ itself, as a program or a child would see it.
        code = ("import ctypes, socket\n"
                "socket.getaddrinfo('localhost', 80)\n"
                "print('libawfshim-core.so' in open('/proc/self/maps').read())\n"
                "environ = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), 'environ')\n"
                "n = 0\n"
                "while environ[n]: n += 1\n"
                "print(sorted(tuple(environ[i].decode().split('=', 1)) for i in range(n)))\n")
        with_shim = run([PYTHON, "-c", code], env=env)
        self.assertEqual(with_shim.returncode, 0, with_shim.stderr)
        engine_loaded, environ = with_shim.stdout.splitlines()
        self.assertEqual(engine_loaded, "True")
        self.assertEqual(eval(environ), sorted(env.items()))

    def test_clients_behave_identically(self):
        with LocalHttp() as http:
            for cmd in (["curl", "-s", "-i", "--http1.1", http.url + "/a?b=1"],
                        [PYTHON, "-c", f"import urllib.request;print(urllib.request.urlopen('{http.url}/x').read())"]):
                plain = run(cmd, env=base_env())
                inert = run(cmd, env=shim_env())
                active = run(cmd, env=shim_env(AWF_SHIM="1", HTTPS_PROXY="http://127.0.0.1:9"))
                strip_date = lambda s: re.sub(r"(?m)^Date: .*$", "", s)
                self.assertEqual(plain.returncode, 0, plain.stderr)
                for other in (inert, active):
                    self.assertEqual(other.returncode, plain.returncode, other.stderr)
                    self.assertEqual(strip_date(other.stdout), strip_date(plain.stdout))


class Loading(TempDirTest):
    def test_first_lookup_loads_the_engine_and_records_init(self):
        trace = self.path("t-%p.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=trace, HTTPS_PROXY=proxy_url("127.0.0.1:3128"),
                       GH_HOST="contoso-aw.ghe.com")
        code = ("import os, socket; socket.getaddrinfo('localhost', 80);"
                "print(os.getpid()); print(open('/proc/self/maps').read())")
        r = run([PYTHON, "-c", code], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = r.stdout.split()[0]
        self.assertIn("libawfshim-core.so", r.stdout)
        events = read_trace(trace.replace("%p", pid))
        self.assertEqual([e["ev"] for e in events], ["init", "dns"])
        self.assertEqual((events[1]["host"], events[1]["mode"]), ("localhost", "passthrough"))
        init = events[0]
        self.assertEqual(init["settings"]["proxy"], f"http://{SENTINEL_PROXY_USER}:***@127.0.0.1:3128")
        self.assertIn("*.contoso-aw.ghe.com", init["settings"]["route"])
        self.assertFalse(init["refuse_routed"])
        self.assertEqual(str(init["pid"]), pid)
        self.assertEqual(init["exe"], "python3")
        self.assertNotIn(SENTINEL_MARK, open(trace.replace("%p", pid)).read())  # in the password
        self.assertEqual(os.stat(trace.replace("%p", pid)).st_mode & 0o777, 0o600)

    def test_concurrent_first_use_and_fork_neither_deadlock_nor_crash(self):
        env = shim_env(AWF_SHIM="1", HTTPS_PROXY="http://127.0.0.1:3128")
        for _ in range(20):
            r = run([os.path.join(PROGRAMS, "first_use_race")], env=env, timeout=60)
            self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"), r.stderr)

    def test_missing_engine_is_one_clear_line_and_loopback_still_works(self):
        env = shim_env(AWF_SHIM="1", AWF_SHIM_CORE=self.path("missing.so"), HTTPS_PROXY="http://127.0.0.1:3128")
        r = run([PYTHON, "-c", "import socket; print(socket.getaddrinfo('localhost', 80)[0][4])"], env=env)
        self.assertEqual(r.returncode, 0)
        self.assertIn("80)", r.stdout)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r"^awf-shim: cannot load the engine: .*missing\.so.*; failing closed: "
                                   r"TCP connections other than to loopback and the proxy are refused$")

    def test_broken_engine_is_refused_with_a_clear_line(self):
        bogus = self.path("bogus.so")
        with open(bogus, "wb") as f:
            f.write(b"not an ELF file")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_CORE=bogus, HTTPS_PROXY="http://127.0.0.1:3128")
        r = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:9/"], env=env)
        self.assertEqual(r.stdout, "000")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot load the engine", r.stderr)


class BadConfiguration(TempDirTest):
    def test_each_bad_setting_is_one_stderr_line_and_a_trace_error(self):
        cfg = self.path("cfg.json")
        with open(cfg, "w") as f:
            f.write('{\n  "route": ["ok.example", "bad host"],\n  "dnss": "fake"\n}\n')
        trace = self.path("t.jsonl")
        env = shim_env(AWF_SHIM="1", AWF_SHIM_CONFIG=cfg, AWF_SHIM_TRACE=trace, AWF_SHIM_PROXY="ftp://x",
                       AWF_SHIM_TIMEOUT_MS="soon")
        r = run([PYTHON, "-c", "import socket; socket.getaddrinfo('localhost', 80)"], env=env)
        self.assertEqual(r.returncode, 0, "a bad configuration never crashes the host")
        lines = r.stderr.strip().splitlines()
        expected = [
            "awf-shim: AWF_SHIM_PROXY: unsupported proxy scheme 'ftp' (only http); expected http://[user:pass@]host:port",
            f"awf-shim: {cfg}:2:27: 'bad host': unexpected character ' ' in host name",
            "awf-shim: AWF_SHIM_TIMEOUT_MS: 'soon': expected milliseconds from 1 to 600000",
            f"awf-shim: {cfg}:3:3: unknown key \"dnss\"",
        ]
        self.assertEqual(len(lines), len(expected), r.stderr)
        for want in expected:
            self.assertTrue(any(line.startswith(want) and line.endswith("; routed connections are refused")
                                for line in lines), f"missing {want!r} in {lines}")
        events = read_trace(trace)
        errors = [e for e in events if e["ev"] == "error"]
        self.assertEqual(len(errors), len(expected))
        self.assertTrue(all(e["effect"] == "refuse routed connections" for e in errors))
        init = [e for e in events if e["ev"] == "init"][0]
        self.assertTrue(init["refuse_routed"])

    def test_a_malformed_proxy_url_is_an_error_that_repeats_no_credential(self):
        # "http://user:password" without '@' reads as host "user", port "password": the error used to
        # quote the port (the password) on stderr of every process and in init.errors. The secrets
        # scan searches both for the sentinel password as well.
        password = urllib.parse.quote(SENTINEL_PROXY_PASSWORD, safe="")
        for url in (f"http://{SENTINEL_PROXY_USER}:{password}", f"{SENTINEL_PROXY_USER}:{password}://h:1"):
            trace = self.path("t.jsonl")
            env = shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=trace, HTTPS_PROXY=url)
            r = run([PYTHON, "-c", "import socket; socket.getaddrinfo('localhost', 80)"], env=env)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stderr, r"^awf-shim: HTTPS_PROXY: (bad proxy port|unsupported proxy scheme) \(")
            init = [e for e in read_trace(trace) if e["ev"] == "init"][0]
            for text in (r.stderr, json.dumps(init)):
                self.assertNotIn(SENTINEL_MARK, text)
            os.unlink(trace)

    def test_trace_path_through_a_symlink_is_refused(self):
        target = self.path("target")
        link = self.path("link")
        os.symlink(target, link)
        env = shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=link, HTTPS_PROXY="http://127.0.0.1:3128")
        r = run([PYTHON, "-c", "import socket; socket.getaddrinfo('localhost', 80)"], env=env)
        self.assertEqual(r.returncode, 0)
        self.assertIn("symbolic link", r.stderr)
        self.assertFalse(os.path.exists(target))


if __name__ == "__main__":
    unittest.main()


class RunWrapper(TempDirTest):
    WRAPPER = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "awf-shim-run")

    def test_switches_the_shim_on_and_appends_to_an_existing_preload(self):
        other = self.path("other.so")
        run(["cc", "-shared", "-fPIC", "-o", other, "-x", "c", "/dev/null"], check=True)
        env = base_env(LD_PRELOAD=other, AWF_SHIM_LIB=FRONT)
        r = run([self.WRAPPER, "--proxy", "http://127.0.0.1:3128", "--route", "*.example.com", "--trace", "stderr",
                 "--", "sh", "-c", 'echo "$LD_PRELOAD|$AWF_SHIM|$AWF_SHIM_PROXY|$AWF_SHIM_ROUTE|$AWF_SHIM_TRACE"'],
                env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), f"{other} {FRONT}|1|http://127.0.0.1:3128|*.example.com|stderr")

    def test_bad_flags_and_a_missing_library_are_clear_errors(self):
        for argv, message in [(["--bogus", "--", "true"], "unknown option '--bogus'"),
                              (["--proxy"], "--proxy needs a URL"),
                              (["--lib", self.path("nope.so"), "--", "true"], "library not found"),
                              (["--"], "no command given")]:
            r = run([self.WRAPPER, *argv], env=base_env())
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn(message, r.stderr)
