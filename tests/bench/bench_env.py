"""What the benchmarks run under: the build's objects, proxychains-ng, and the environment of
each configuration. Every configuration starts from the same scrubbed environment (no proxy
variables, no LD_PRELOAD, no AWF_SHIM_*) and adds only its own variables."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "fixtures"))

import net  # noqa: E402  (the fake tenant's names and upstream address)
from harness import base_env, with_hosts_file, write_hosts_file  # noqa: E402

PROXY_URL = "http://127.0.0.1:3128"   # the Squid the routed benchmarks start (port 3128, loopback)
# The same Squid by name (with_proxy_named), for a native client that looks a name up, as every
# client under the shim does.
PROXY_NAME = "proxy.bench.test"
NAMED_PROXY_URL = f"http://{PROXY_NAME}:3128"
MICRO_PROXY = "127.0.0.1:39128"       # hook_micro's own CONNECT proxy, for its tunnelled-fd benchmarks
TENANT = net.TENANT                   # contoso-aw.ghe.com: routed through GH_HOST
ROUTED_NAME = net.API                 # api.contoso-aw.ghe.com
PROXYCHAINS = "/usr/bin/proxychains4"
PROXYCHAINS_LIB = "/usr/lib/x86_64-linux-gnu/libproxychains.so.4"


class Build:
    def __init__(self, build_dir):
        self.dir = os.path.realpath(build_dir)
        self.front = os.path.join(self.dir, "libawfshim.so")
        self.bench = os.path.join(self.dir, "tests", "bench")

    def tool(self, name):
        return os.path.join(self.bench, name)


def with_proxy_named(work):
    """An argv prefix: the program in a mount namespace of its own whose /etc/hosts (a bind mount,
    seen by nothing else) gives PROXY_NAME to the proxy, next to localhost."""
    path = write_hosts_file(os.path.join(work, "hosts-proxy-named"),
                            f"127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.1 {PROXY_NAME}\n")
    return with_hosts_file(path)


def write_proxychains_conf(path):
    """proxychains-ng set up like the shim: remote DNS (proxy_dns), one HTTP CONNECT proxy (the
    same Squid), loopback left alone (the shim never tunnels loopback either)."""
    host, port = PROXY_URL.rsplit("/", 1)[1].split(":")
    with open(path, "w") as f:
        f.write("# written by tests/bench/bench_env.py\n"
                "strict_chain\n"
                "proxy_dns\n"
                "remote_dns_subnet 224\n"
                "tcp_read_time_out 15000\n"
                "tcp_connect_time_out 8000\n"
                "localnet 127.0.0.0/255.0.0.0\n"
                "[ProxyList]\n"
                f"http {host} {port}\n")
    return path


def proxychains_version():
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "proxychains4"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def plain():
    return base_env()


def front_unset(build):
    return base_env(LD_PRELOAD=build.front)


def front_active(build, **extra):
    """AWF_SHIM=1 with the tenant routed (GH_HOST) and the proxy named only to the shim; extra
    adds or overrides variables."""
    env = base_env(LD_PRELOAD=build.front, AWF_SHIM="1", AWF_SHIM_PROXY=PROXY_URL, GH_HOST=TENANT)
    env.update(extra)
    return env


def proxychains_preloaded(conf):
    """What `proxychains4 -q -f CONF` sets up before exec'ing the program, without the launcher's
    own exec (for process-start and per-call figures)."""
    return base_env(LD_PRELOAD=PROXYCHAINS_LIB, PROXYCHAINS_CONF_FILE=conf, PROXYCHAINS_QUIET_MODE="1")


def proxychains_argv(conf):
    """The launcher as users run it: prefix of a command line."""
    return [PROXYCHAINS, "-q", "-f", conf]


def env_args(env):
    """VAR=VALUE arguments for the variables a configuration adds to the scrubbed environment."""
    base = base_env()
    return [f"{k}={v}" for k, v in env.items() if base.get(k) != v]
