"""The arm64 test root works, without the shim yet: inside it (tests/integration/arm64.py), the
arm64 curl, python3 and Node.js 24 reach a native HTTPS upstream on the test namespace's loopback
through a native Squid (each told the proxy itself), and the arm64 Copilot CLI 1.0.102 and the
all-JavaScript 1.0.6 on arm64 Node run. Each program is checked to be an aarch64 ELF executable
(e_machine 183), run by the kernel through qemu-aarch64 (binfmt_misc).

Nothing here installs: with the root or a runtime missing, a test fails at once naming what to run
(scripts/lib/install-arm64-root; scripts/lib/install-runtimes node-24-arm64 copilot-1.0.102-arm64).

Hook for the shim's aarch64 build (arm64.FRONT_AARCH64, bound into the root at its own path):
the same clients, given LD_PRELOAD=arm64.FRONT_AARCH64 and AWF_SHIM=1 instead of the proxy."""
import json
import os
import shutil
import tempfile
import unittest

import arm64
import net
from harness import runtime
from squid import Squid

PROXY = "http://127.0.0.1:3128"
W = None          # module scratch dir, bound into the root at its own path
CA = None         # test CA file (in W)
SQUID = None
_stack = []


def setUpModule():
    global W, CA, SQUID
    # Before any fixture: without the root or binfmt, every test fails at once with what to run.
    arm64.arm64_root()
    arm64.ensure_binfmt()
    W = tempfile.mkdtemp(prefix="awfshim-arm64-", dir="/tmp")
    os.chmod(W, 0o755)
    CA = net.make_ca(os.path.join(W, "ca"), [net.API])
    _stack.append(net.upstream(W, "https", [f"{net.UPSTREAM_IP}:443"], "http", os.path.join(W, "ca"),
                               log=os.path.join(W, "https.log")).__enter__())
    SQUID = Squid(os.path.join(W, "squid"), port=3128, allow=[f".{net.TENANT}"],
                  hosts={net.API: net.UPSTREAM_IP}).start()


def tearDownModule():
    if SQUID:
        SQUID.stop(fast=True)
    for p in reversed(_stack):
        p.__exit__(None, None, None)
    if W:
        shutil.rmtree(W, ignore_errors=True)


def upstream_requests():
    path = os.path.join(W, "https.log")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


class Arm64Root(unittest.TestCase):
    def setUp(self):
        self.squid_mark = len(SQUID.settled_log())
        self.home = tempfile.mkdtemp(prefix="home-", dir=W)

    def env(self, **extra):
        return {"PATH": arm64.ROOT_PATH, "HOME": self.home, "LANG": "C.UTF-8", **extra}

    def run_in_root(self, argv, **extra):
        return arm64.run_in_root(argv, env=self.env(**extra), binds=[W])

    def assert_aarch64(self, host_path):
        self.assertEqual(arm64.elf_machine(host_path), arm64.EM_AARCH64, f"{host_path} is not an aarch64 executable")

    def assert_through_squid(self, r, path):
        """r printed the upstream's reply (then anything); Squid tunnelled exactly that request."""
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        body = json.loads(r.stdout.split("\n", 1)[0])
        self.assertEqual((body["host"], body["sni"], body["path"]), (net.API, net.API, path))
        self.assertIn(path, [q.get("path") for q in upstream_requests()])
        self.assertEqual([(e["method"], e["url"], e["status"], e["squid_status"])
                          for e in SQUID.settled_log()[self.squid_mark:]],
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
        r = self.run_in_root(["curl", "-sS", "-x", PROXY, "--cacert", CA, f"https://{net.API}/arm64-curl"])
        self.assert_through_squid(r, "/arm64-curl")

    def test_python_urllib_through_squid(self):
        self.assert_aarch64(arm64.in_root("/usr/bin/python3"))
        code = ("import platform, ssl, urllib.request\n"
                f"ctx = ssl.create_default_context(cafile={CA!r})\n"
                f"opener = urllib.request.build_opener(urllib.request.ProxyHandler({{'https': {PROXY!r}}}),\n"
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
        r = self.run_in_root([node, "-e", code], NODE_USE_ENV_PROXY="1", HTTPS_PROXY=PROXY, NODE_EXTRA_CA_CERTS=CA)
        self.assert_through_squid(r, "/arm64-node")
        self.assertEqual(r.stdout.split()[-1], "arm64")

    def test_copilot_1_0_102_arm64_version(self):
        copilot = runtime("copilot-1.0.102-arm64")
        self.assert_aarch64(copilot)
        # install-runtimes' layout: DIR/node_modules/@github/copilot-linux-arm64/copilot, DIR/pkg-cache
        pkg_cache = os.path.join(copilot.split("/node_modules/")[0], "pkg-cache")
        r = self.run_in_root([copilot, "--version"], COPILOT_PKG_CACHE_HOME=pkg_cache)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("GitHub Copilot CLI 1.0.102.", r.stdout)

    def test_copilot_1_0_6_runs_on_node_24_arm64(self):
        # 1.0.6 is all JavaScript and ships every platform's native parts (linux-arm64 too): the
        # x86 tests' install runs on arm64 Node as it is.
        r = self.run_in_root([runtime("node-24-arm64"), runtime("copilot-1.0.6"), "--version"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("GitHub Copilot CLI 1.0.6.", r.stdout)


if __name__ == "__main__":
    unittest.main()
