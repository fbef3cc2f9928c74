"""The release tarball (scripts/release), deployed as an operator would: unpacked at /opt/awf-shim
in a private root that holds only what the client programs themselves need, and run there through
a real Squid against the fake GHE.com tenant.

The root is a directory used with chroot(2) in a child mount namespace (the launcher below): the
client binaries (curl, python3, the Copilot CLI 1.0.102's single-file executable) and exactly the
shared libraries `ldd` lists for them (for python3 also for the extension modules its client code
imports, its stdlib directory and the sitecustomize that directory links to; for the CLI also for
the native addons it loads from its package cache, which it needs too), the test CA,
/etc/hosts and /etc/resolv.conf, /dev/null, /dev/urandom, /proc and /tmp, bound read-only from
the machine's files (nothing of the machine's is changed); and the unpacked tarball. So nothing of
the build and no Abseil, simdjson, Zydis or (unless a client links it) libstdc++ is there: what
runs is the tarball's own objects, and the engine can only have come from it.

Needs a tarball (harness.release_tarball(): scripts/release), the pinned Copilot CLI
(scripts/lib/install-runtimes) and the fake tenant of the build (AWF_BUILD). Skipped under a
sanitizer rerun: it tests the tarball's objects, not the sanitizer build."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness
import net
import secrets_scan
from firewall import ANSWER, TOKEN, Firewall, pkg_cache
from harness import PYTHON, SENTINEL_ENV

SKIP = (f"under {harness.SANITIZER} sanitizer: this module tests the release tarball's own objects, "
        "not the sanitizer build") if harness.SANITIZER else ""
SHIM = "/opt/awf-shim"                       # where the tarball is unpacked, inside the root
FRONT, ENGINE = f"{SHIM}/lib/libawfshim.so", f"{SHIM}/lib/libawfshim-core.so"
TRACE_TOOL = f"{SHIM}/bin/awf-shim-trace"
CLI, PKG_CACHE = "/opt/copilot/copilot", "/opt/copilot/pkg-cache"
CA = "/etc/awf-test/ca.pem"
# Every import of the Python client code run in the root (its extension modules' libraries go in).
PY_IMPORTS = "import json, os, socket, ssl, sys, urllib.request"
BUNDLED = re.compile(r"absl|simdjson|zydis|zycore", re.I)

# Runs argv inside the root: a mount namespace of its own, the binds, /proc, chroot, execve with
# the given environment. The launcher is the machine's python3 with a bare environment, so
# nothing outside the root ever sees LD_PRELOAD.
_LAUNCHER = r"""
import ctypes, json, os, sys
spec = json.load(open(sys.argv[1]))
libc = ctypes.CDLL(None, use_errno=True)
def check(rc, what):
    if rc != 0:
        sys.exit(f"private root: {what}: {os.strerror(ctypes.get_errno())}")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
check(libc.unshare(0x20000), "unshare(CLONE_NEWNS)")
check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
root = spec["root"]
for source, target, writable in spec["binds"]:
    t = (root + target).encode()
    check(libc.mount(source.encode(), t, None, MS_BIND, None), f"bind {source} on {target}")
    if not writable:
        check(libc.mount(None, t, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None), f"read-only {target}")
check(libc.mount(b"proc", (root + "/proc").encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "proc")
os.chroot(root)
os.chdir(spec["cwd"])
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""


def ldd(path):
    """{name as ldd prints it: resolved path} of what the loader maps for `path`."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "not found" in r.stdout:
        raise AssertionError(f"ldd {path} failed: {r.stdout}{r.stderr}")
    libs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+) \(0x", line) or re.match(r"\s*(/\S+) \(0x", line)
        if m:
            libs[m.group(1)] = m.group(m.lastindex)
    return libs


class PrivateRoot:
    """The root's plan: .files {path in the root: the machine's file bound there}, .dirs the same
    for directories, .needs {client: [library names its ldd lists]}; built under `directory`."""

    def __init__(self, directory, unpacked, clients, ca, pkg_cache):
        self.dir = directory
        self.files, self.dirs, self.needs, self.writable = {}, {}, {}, set()
        for in_root, source in clients.items():
            self.files[in_root] = os.path.realpath(source)
            self.add_libraries(in_root, source)
        stdlib = subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                                capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        self.dirs[stdlib] = stdlib  # python3's stdlib dir, lib-dynload in it
        for name in os.listdir(stdlib):  # Debian links sitecustomize.py to /etc/python3.X/
            target = os.path.realpath(os.path.join(stdlib, name))
            if not target.startswith(stdlib + "/") and os.path.isfile(target):
                self.files[target] = target
        modules = subprocess.run([PYTHON, "-c", PY_IMPORTS + "; print(*sorted({m.__file__ for m in list("
                                  "sys.modules.values()) if (getattr(m, '__file__', '') or '').endswith('.so')}))"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout.split()
        for module in modules:
            self.add_libraries(f"python3 ({os.path.basename(module)})", module)
        for dev in ("/dev/null", "/dev/urandom"):
            self.files[dev] = dev
        self.dirs[PKG_CACHE] = pkg_cache  # the CLI's unpacked assets (scripts/lib/install-runtimes)
        # The CLI loads native addons of its own from there (runtime.node needs libutil): theirs too.
        for addon in sorted(glob.glob(os.path.join(pkg_cache, "pkg", "linux-x64", "*", "prebuilds", "linux-x64", "*"))):
            with open(addon, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    self.add_libraries(f"{CLI} (its {os.path.basename(addon)})", addon)
        self.writable = {PKG_CACHE}
        self.build(unpacked, ca)

    def add_libraries(self, client, binary):
        libs = ldd(binary)
        self.needs[client] = sorted(os.path.basename(n) for n in libs)
        for name, resolved in libs.items():
            # At the path the loader searches (/lib is /usr/lib here: the same links go in the root).
            self.files[os.path.join(os.path.realpath(os.path.dirname(name if name.startswith("/") else resolved)),
                                    os.path.basename(name))] = os.path.realpath(resolved)

    def build(self, unpacked, ca):
        os.makedirs(self.dir)
        for path in self.files:
            os.makedirs(self.path(os.path.dirname(path)), exist_ok=True)
            open(self.path(path), "w").close()  # the bind's mount point
        for top in ("lib", "lib64"):  # the machine's merged-/usr links, for the loader's paths
            if os.path.islink("/" + top) and os.path.isdir(os.path.join(self.dir, os.readlink("/" + top))):
                os.symlink(os.readlink("/" + top), os.path.join(self.dir, top))
        for path in self.dirs:
            os.makedirs(self.path(path), exist_ok=True)
        for d in ("proc", "tmp", "home", "etc/awf-test", "opt"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.path("tmp"), 0o1777)
        shutil.copyfile(ca, self.path(CA))
        shutil.copyfile("/etc/resolv.conf", self.path("/etc/resolv.conf"))  # the test namespace's
        with open(self.path("/etc/hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        shutil.copytree(unpacked, self.path(SHIM), symlinks=True)

    def path(self, in_root):
        return os.path.join(self.dir, in_root.lstrip("/"))

    def run(self, argv, env, cwd="/tmp", timeout=harness.HANG_GUARD):
        """argv run inside the root with exactly `env`; a CompletedProcess (text)."""
        binds = [(src, dst, dst in self.writable) for dst, src in {**self.files, **self.dirs}.items()]
        fd, spec = tempfile.mkstemp(prefix="spec-", suffix=".json", dir=os.path.dirname(self.dir))
        with os.fdopen(fd, "w") as f:
            json.dump({"root": self.dir, "binds": binds, "cwd": cwd, "argv": argv, "env": env}, f)
        try:
            return subprocess.run([PYTHON, "-c", _LAUNCHER, spec], env={"PATH": "/usr/bin:/bin"}, timeout=timeout,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        finally:
            os.unlink(spec)


W = FW = ROOT = TRAP = VERSION = None


def setUpModule():
    global W, FW, ROOT, TRAP, VERSION
    if SKIP:
        return
    tarball = harness.release_tarball()
    copilot = harness.runtime("copilot-1.0.102")
    tenant = os.path.join(harness.BUILD, "tests", "e2e", "fake_tenant")
    if not os.path.exists(tenant):
        raise AssertionError(f"{tenant} is missing: build it (ninja -C {harness.BUILD} tests/e2e/fake_tenant), "
                             "or point AWF_BUILD at a build that has it")
    W = tempfile.mkdtemp(prefix="awfshim-release-", dir="/tmp")
    os.chmod(W, 0o755)
    try:
        unpacked = os.path.join(W, "unpacked")
        os.mkdir(unpacked)
        subprocess.run(["tar", "-xzf", tarball, "-C", unpacked], check=True, timeout=60)
        (top,) = os.listdir(unpacked)
        VERSION = re.fullmatch(r"awf-shim-(.+)-linux-x86_64", top).group(1)
        FW = Firewall(os.path.join(W, "fw"), copilot=copilot).__enter__()
        ROOT = PrivateRoot(os.path.join(W, "root"), os.path.join(unpacked, top), ca=FW.ca, clients={
            "/usr/bin/curl": shutil.which("curl"), "/usr/bin/python3": PYTHON, CLI: copilot},
            pkg_cache=pkg_cache(copilot))
        # Where a shim that connected a routed host directly would go: its synthetic addresses, as
        # a process in the root sees them, with listeners on loopback (a direct connect succeeds).
        code = (PY_IMPORTS + "\nprint(*{a[4][0] for h in sys.argv[1:] for a in socket.getaddrinfo(h, 443, "
                "type=socket.SOCK_STREAM)})")
        r = ROOT.run(["/usr/bin/python3", "-c", code, *FW.hosts], shim_env())
        if r.returncode != 0:
            raise AssertionError(f"python3 in the private root could not look up the routed hosts: {r.stderr}")
        TRAP = net.DirectTrap(r.stdout.split(), 443).__enter__()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if TRAP:
        TRAP.__exit__(None, None, None)
    if FW:
        FW.__exit__(None, None, None)
    if W:
        shutil.rmtree(W, ignore_errors=True)


def shim_env(trace=None, home="/tmp", **extra):
    """The environment of a client in the root, under the tarball's shim (fake credentials too)."""
    env = {"PATH": "/usr/bin", "HOME": home, "LANG": "C.UTF-8", "AWF_SHIM": "1", "LD_PRELOAD": FRONT,
           "AWF_SHIM_PROXY": FW.squid.proxy_url, "GH_HOST": FW.tenant, "SSL_CERT_FILE": CA, **SENTINEL_ENV, **extra}
    if trace:
        env["AWF_SHIM_TRACE"] = trace
    return env


@unittest.skipIf(SKIP, SKIP)
class Tarball(unittest.TestCase):
    def test_sha256sums_verify_every_file(self):
        top = ROOT.path(SHIM)
        r = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=top, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"sha256sum -c SHA256SUMS in the unpacked tarball:\n{r.stdout}{r.stderr}")
        with open(os.path.join(top, "SHA256SUMS")) as f:
            listed = {line.split("  ", 1)[1].rstrip("\n") for line in f}
        present = {os.path.relpath(os.path.join(d, n), top) for d, _, names in os.walk(top) for n in names}
        self.assertEqual(listed, present - {"SHA256SUMS"}, "SHA256SUMS lists every other file of the tarball")

    def test_layout(self):
        top = ROOT.path(SHIM)
        for rel in ("lib/libawfshim.so", "lib/libawfshim-core.so", "bin/awf-shim-run", "bin/awf-shim-trace"):
            self.assertTrue(os.access(os.path.join(top, rel), os.X_OK), f"{rel} missing or not executable")
        for rel in ("README.md", "share/licenses/awf-shim/LICENSE", "share/licenses/abseil/LICENSE",
                    "share/licenses/simdjson/LICENSE", "share/licenses/zydis/LICENSE", "share/licenses/zycore/copyright",
                    "share/licenses/gcc-runtime/copyright", "share/licenses/gcc-runtime/GPL-3"):
            self.assertTrue(os.path.isfile(os.path.join(top, rel)), f"{rel} missing")


@unittest.skipIf(SKIP, SKIP)
class RootContents(unittest.TestCase):
    def test_only_what_the_clients_need_and_no_bundled_library(self):
        code = ("import json, os\nout = []\nfor d, dirs, names in os.walk('/'):\n"
                "    dirs[:] = [x for x in dirs if os.path.join(d, x) != '/proc']\n"
                "    out += [os.path.join(d, n) for n in names]\nprint(json.dumps(out))")
        r = ROOT.run(["/usr/bin/python3", "-c", code], {"PATH": "/usr/bin", "LANG": "C.UTF-8"})
        self.assertEqual(r.returncode, 0, r.stderr)
        files = set(json.loads(r.stdout))
        self.assertEqual(sorted(f for f in files if BUNDLED.search(os.path.basename(f))), [],
                         "Abseil, simdjson and Zydis are linked into the engine: no copy of them may be in the root")
        stdcxx = sorted(f for f in files if os.path.basename(f).startswith("libstdc++"))
        placed = sorted(f for f in ROOT.files if os.path.basename(f).startswith("libstdc++"))
        linked_by = sorted(c for c, libs in ROOT.needs.items() if "libstdc++.so.6" in libs)
        self.assertEqual(stdcxx, placed,
                         f"libstdc++ in the root: {stdcxx or 'none'}; it may be there only where a client's own ldd "
                         f"put it, and these clients' own ldd lists it: {linked_by or 'none'} (the Copilot CLI's "
                         "executable links it itself; the engine and the trace tool have it linked in)")
        own = {f for f in files if not f.startswith((SHIM + "/", PKG_CACHE + "/", "/tmp/", "/home/")) and
               not any(f.startswith(d + "/") for d in ROOT.dirs)}
        self.assertEqual(sorted(own - set(ROOT.files) - {CA, "/etc/hosts", "/etc/resolv.conf"}), [],
                         "the root holds nothing but the clients, their libraries and the test's files")

    def test_the_shipped_objects_load_with_what_the_root_holds(self):
        loader = next(p for p in ROOT.files if os.path.basename(p).startswith("ld-linux"))
        for obj in (FRONT, ENGINE, TRACE_TOOL):
            r = ROOT.run([loader, "--list", obj], {"PATH": "/usr/bin"})
            self.assertEqual(r.returncode, 0, f"{obj}: {r.stdout}{r.stderr}")
            self.assertNotIn("not found", r.stdout, obj)
            names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
            self.assertFalse({n for n in names if BUNDLED.search(n) or n.startswith("libstdc++")}, f"{obj}: {names}")


@unittest.skipIf(SKIP, SKIP)
class ClientsInTheRoot(harness.TempDirTest):
    """Each client, in the root, under the tarball's shim, through Squid to the fake tenant."""

    def setUp(self):
        super().setUp()
        self.squid_mark = len(FW.squid.settled_log())
        self.tenant_mark = len(FW.tenant_requests())
        self.name = self.id().rsplit(".", 1)[1]
        self.trace = f"/tmp/{self.name}.jsonl"  # inside the root

    def tenant_requests(self):
        return FW.tenant_requests()[self.tenant_mark:]

    def summary(self):
        """The tarball's awf-shim-trace, run in the root, on this test's trace."""
        r = ROOT.run([TRACE_TOOL, "summary", "--json", self.trace], {"PATH": "/usr/bin", "LANG": "C.UTF-8"})
        self.assertEqual(r.returncode, 0, f"{TRACE_TOOL} summary --json in the root: {r.stderr}")
        return json.loads(r.stdout)

    def assert_routed(self, result, hosts, exe):
        """The trace (read by the tarball's tool) shows each host tunnelled through Squid, the engine
        loaded from the root, no direct connection; Squid logged a CONNECT for each tunnel."""
        events = harness.read_trace(ROOT.path(self.trace))
        self.assertTrue(events, f"no trace: the engine never loaded in the root\n{result.stderr}")
        inits = [e for e in events if e["ev"] == "init"]
        self.assertTrue(inits and all(e["version"] == VERSION and e["exe"] == exe for e in inits), inits)
        doc = self.summary()
        harness.assert_summary_tunnelled(self, doc, hosts)
        self.assertEqual(TRAP.connections(), [], "a routed host was connected directly")
        tunnels = [e for e in events if e["ev"] == "tunnel" and e["result"] == "open"]
        for host in hosts:
            mine = [t for t in tunnels if t["target"] == f"{host}:443"]
            connects = [e for e in FW.squid.settled_log()[self.squid_mark:]
                        if e["method"] == "CONNECT" and e["url"] == f"{host}:443"]
            self.assertEqual(len(connects), len(mine), f"one Squid CONNECT per tunnel to {host}: {connects}")
            self.assertTrue(all(e["status"] == 200 and e["squid_status"].startswith("TCP_TUNNEL") for e in connects))
        self.assert_no_secret(result)

    def assert_no_secret(self, result):
        outputs = []
        for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            outputs.append(self.path(name))
            with open(outputs[-1], "w") as f:
                f.write(text)
        secrets = [secrets_scan.Secret(v, label) for v, label in harness.SENTINELS.items()]
        hits = [h for p in (ROOT.path(self.trace), *outputs) for h in secrets_scan.scan_file(p, secrets)[0]]
        self.assertEqual([str(h) for h in hits], [], "a fake secret given to the client is in its trace or output")

    def test_curl(self):
        host = f"api.{FW.tenant}"
        r = ROOT.run(["/usr/bin/curl", "-sS", "--fail", "--cacert", CA, f"https://{host}/copilot_internal/user"],
                     shim_env(self.trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("login", json.loads(r.stdout))
        self.assertEqual([(q["host"], q["path"], q["sni"], q["status"]) for q in self.tenant_requests()],
                         [(host, "/copilot_internal/user", host, 200)])
        self.assert_routed(r, [host], "curl")

    def test_python_urllib_and_the_engine_mapped_from_the_root(self):
        host = f"copilot-api.{FW.tenant}"
        code = (PY_IMPORTS + f"\nbody = urllib.request.urlopen('https://{host}/models').read().decode()\n"
                "maps = [l.split() for l in open('/proc/self/maps') if 'awfshim' in l]\n"
                "print(json.dumps({'body': json.loads(body), 'maps': [m[3:6] for m in maps]}))")
        r = ROOT.run(["/usr/bin/python3", "-c", code], shim_env(self.trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertTrue(out["body"]["data"], out["body"])
        self.assertEqual([(q["host"], q["path"], q["sni"]) for q in self.tenant_requests()], [(host, "/models", host)])
        # The objects the process mapped are the root's files: same path, device and inode.
        want = []
        for obj in (FRONT, ENGINE):
            st = os.stat(ROOT.path(obj))
            want.append((f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}", str(st.st_ino), obj))
        self.assertEqual(sorted({tuple(m) for m in out["maps"]}), sorted(want),
                         "the front and the engine mapped from the root's files")
        self.assert_routed(r, [host], "python3")

    def test_copilot_cli_end_to_end(self):
        home = f"/home/{self.name}"
        os.makedirs(ROOT.path(home + "/work"))
        env = shim_env(self.trace, home=home, COPILOT_PKG_CACHE_HOME=PKG_CACHE, COPILOT_GITHUB_TOKEN=TOKEN,
                       NODE_EXTRA_CA_CERTS=CA)
        r = ROOT.run(FW.cli_argv(cli=[CLI]), env, cwd=home + "/work", timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(ANSWER, r.stdout)
        seen = {(q["host"], q["path"].split("?")[0]): q for q in self.tenant_requests()}
        for key in ((f"api.{FW.tenant}", "/copilot_internal/user"), (f"copilot-api.{FW.tenant}", "/chat/completions")):
            self.assertIn(key, seen, sorted(seen))
            self.assertEqual((seen[key]["auth_scheme"], seen[key]["token_kind"]), ("Bearer", "github_pat_"))
        self.assert_routed(r, [f"api.{FW.tenant}", f"copilot-api.{FW.tenant}"], "copilot")


if __name__ == "__main__":
    sys.exit("run it with tests/integration/run.py test_release")
