"""Shared helpers for the integration tests: where the build is, how to run a real program under
the shim, and how to look at what it did."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("AWF_BUILD", os.path.join(ROOT, "build"))
FRONT = os.path.join(BUILD, "libawfshim.so")
ENGINE = os.path.join(BUILD, "libawfshim-core.so")
PROGRAMS = os.path.join(BUILD, "tests", "integration", "programs")
FIXTURES = os.path.join(ROOT, "tests", "integration", "fixtures")
PYTHON = "/usr/bin/python3"
HANG_GUARD = 120  # seconds; a generous bound so that a hang fails instead of blocking CI

sys.path.insert(0, FIXTURES)

# Variables that would change what a client does on its own; tests start from a clean slate.
_SCRUBBED = ("LD_PRELOAD", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
             "all_proxy", "NO_PROXY", "no_proxy", "GH_HOST", "COPILOT_GH_HOST", "GITHUB_SERVER_URL")


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("AWF_SHIM")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def shim_env(preload=True, **extra):
    """The environment of a process under the front: extra holds AWF_SHIM_* and friends."""
    env = base_env(**extra)
    if preload:
        env["LD_PRELOAD"] = FRONT
    return env


def run(cmd, env=None, timeout=HANG_GUARD, check=False, **kw):
    return subprocess.run(cmd, env=env if env is not None else base_env(), timeout=timeout,
                          capture_output=True, text=True, check=check, **kw)


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
