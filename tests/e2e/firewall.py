"""A firewall like AWF's, in the current (private) network namespace: a fake GHE.com
data-residency tenant behind a real Squid whose allowlist names the hosts, and the real Copilot
CLI run with or without the shim. Used by the end-to-end tests and by scripts/demo."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "fixtures"))

import net  # noqa: E402
from harness import BUILD, SENTINEL_TOKEN, front_preload, runtime, sanitizer_env  # noqa: E402
from squid import Squid  # noqa: E402

TENANT_IP = "127.0.0.3"
# A fake fine-grained PAT: recognisable (harness.SENTINEL_TOKEN), so the tests and the secrets scan
# can prove it never reaches a trace.
TOKEN = SENTINEL_TOKEN
ANSWER = "Hello from the fake tenant, through the firewall."
CLI_FLAGS = ["--model", "gpt-5-mini", "--allow-all-tools"]
REDUCING_FLAGS = ["--no-auto-update", "--disable-client-telemetry", "--disable-builtin-mcps"]


def install_copilot():
    """The pinned CLI (scripts/lib/install-runtimes installed it); returns the path of `copilot`."""
    return runtime("copilot-1.0.102")


def install_copilot_on_node24():
    """Copilot CLI 1.0.6 (all JavaScript) and Node.js 24, both pinned: the argv prefix that runs
    the CLI through Node's own OpenSSL."""
    return [runtime("node-24"), runtime("copilot-1.0.6")]


def pkg_cache(copilot):
    """Where the pinned CLI unpacks itself: install-runtimes' layout is
    DIR/node_modules/@github/copilot-linux-ARCH/copilot beside DIR/pkg-cache."""
    return os.path.join(copilot.split("/node_modules/")[0], "pkg-cache")


class Firewall:
    def __init__(self, work, slug="contoso-aw", allow=None, copilot=None):
        self.work, self.slug = work, slug
        self.tenant = f"{slug}.ghe.com"
        self.hosts = [self.tenant, f"api.{self.tenant}", f"copilot-api.{self.tenant}",
                      f"copilot-telemetry-service.{self.tenant}", "api.github.com"]
        # What AWF allows for a data-residency tenant, unless the test says otherwise.
        self.allow = allow if allow is not None else self.hosts[:4]
        self.copilot = copilot
        self._procs = []

    def __enter__(self):
        os.makedirs(self.work, exist_ok=True)
        os.chmod(self.work, 0o755)
        ca_dir = os.path.join(self.work, "ca")
        self.ca = net.make_ca(ca_dir, self.hosts)
        self.tenant_log = os.path.join(self.work, "tenant.jsonl")
        port_file = os.path.join(self.work, "tenant.ports")
        argv = [os.path.join(BUILD, "tests", "e2e", "fake_tenant"), "--listen", f"{TENANT_IP}:443",
                "--cert", os.path.join(ca_dir, "server.pem"), "--key", os.path.join(ca_dir, "server.key"),
                "--slug", self.slug, "--log", self.tenant_log, "--port-file", port_file, "--answer", ANSWER]
        self._procs.append(net.Process(argv, port_file).__enter__())
        self.squid = Squid(os.path.join(self.work, "squid"), port=3128, allow=self.allow,
                           hosts={h: TENANT_IP for h in self.hosts}).start()
        return self

    def __exit__(self, *exc):
        self.squid.stop(fast=True)
        for p in reversed(self._procs):
            p.__exit__(None, None, None)

    def fresh_dirs(self):
        """A HOME and a working directory of their own: no cached answers."""
        return tempfile.mkdtemp(prefix="home-", dir=self.work), tempfile.mkdtemp(prefix="cwd-", dir=self.work)

    def cli_argv(self, prompt="say hi", reduced=True, cli=None):
        """The CLI's command line; cli: the argv prefix of another CLI build (default: the pinned
        `copilot`)."""
        return [*(cli or [self.copilot]), "-p", prompt, *CLI_FLAGS, *(REDUCING_FLAGS if reduced else [])]

    def cli_env(self):
        """What the CLI reads of this firewall: the tenant, its token, the tenant's CA, and where
        the pinned CLI (if this firewall has one) unpacks itself."""
        env = {"GH_HOST": self.tenant, "COPILOT_GITHUB_TOKEN": TOKEN, "NODE_EXTRA_CA_CERTS": self.ca}
        if self.copilot:
            env["COPILOT_PKG_CACHE_HOME"] = pkg_cache(self.copilot)
        return env

    def run_cli(self, prompt="say hi", shim=True, proxy_env=False, reduced=True, trace=None, timeout=180, cli=None):
        home, workdir = self.fresh_dirs()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", **self.cli_env()}
        if shim:
            env.update(AWF_SHIM="1", LD_PRELOAD=front_preload(), AWF_SHIM_PROXY=self.squid.proxy_url,
                       **sanitizer_env())
            if trace:
                env["AWF_SHIM_TRACE"] = trace
        if proxy_env:
            env.update(HTTPS_PROXY=self.squid.proxy_url, HTTP_PROXY=self.squid.proxy_url,
                       NO_PROXY="localhost,127.0.0.1,::1")
        return subprocess.run(self.cli_argv(prompt, reduced, cli), env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def tenant_requests(self):
        if not os.path.exists(self.tenant_log):
            return []
        with open(self.tenant_log) as f:
            return [json.loads(line) for line in f if line.strip()]
