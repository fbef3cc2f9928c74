"""Network fixtures for the routing tests, all on loopback inside the test namespace: a test CA,
TLS and plain upstreams standing in for the tenant's hosts, the fault-injecting CONNECT proxy,
a real Squid set up like the firewall's, and a trap for direct connections."""
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from harness import FIXTURES, PYTHON

SLUG = "contoso-aw"
TENANT = f"{SLUG}.ghe.com"
API = f"api.{TENANT}"
COPILOT_API = f"copilot-api.{TENANT}"
UPSTREAM_IP = "127.0.0.2"    # the tenant's hosts, HTTPS on 443 (+ echo on 7000, greeting on 7001)
ECHO_PORT, GREETING_PORT = 7000, 7001


def wait_for_file(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"fixture exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"fixture did not start: {path}")
        time.sleep(0.02)
    with open(path) as f:
        return f.read().split()


class Process:
    """A fixture server as a child process, stopped with SIGTERM."""

    def __init__(self, argv, port_file):
        self.argv, self.port_file = argv, port_file

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ports = wait_for_file(self.port_file, self.proc)
        return self

    def __exit__(self, *a):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_ca(directory, names):
    subprocess.run([os.path.join(FIXTURES, "testca.sh"), directory, *names], check=True, timeout=60)
    return os.path.join(directory, "ca.pem")


def upstream(work, name, listens, mode="http", tls_dir=None, log=None):
    argv = [PYTHON, os.path.join(FIXTURES, "upstream.py"), "--mode", mode,
            "--port-file", os.path.join(work, f"{name}.ports")]
    for listen in listens:
        argv += ["--listen", listen]
    if tls_dir:
        argv += ["--tls", os.path.join(tls_dir, "server.pem"), os.path.join(tls_dir, "server.key")]
    if log:
        argv += ["--log", log]
    return Process(argv, os.path.join(work, f"{name}.ports"))


class TlsUpstreamBehindProxy:
    """The tap tests' module fixture: a scratch dir (.dir), a test CA (.ca) for API, an HTTPS
    upstream for it, and a fault-injecting CONNECT proxy (.proxy) that maps every name to it."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix, dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.ca = make_ca(os.path.join(self.dir, "ca"), [API])
        self._stack = [upstream(self.dir, "https", [f"{UPSTREAM_IP}:443"], "http", os.path.join(self.dir, "ca")).__enter__()]
        self.proxy = connect_proxy(self.dir, maps=[f"*={UPSTREAM_IP}"]).__enter__()
        self._stack.append(self.proxy)
        return self

    def __exit__(self, *exc):
        for p in reversed(self._stack):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)


def gated_connect_proxy(test):
    """A fault proxy of `test`'s own (a TempDirTest) that holds its reply to CONNECT until the file
    test.gate exists (the test, or its client, opens the gate by creating it); stopped with the test."""
    test.gate = test.path("gate")
    proxy = connect_proxy(test.dir, name="gated", maps=[f"*={UPSTREAM_IP}"], fault=f"gate={test.gate}").__enter__()
    test.addCleanup(proxy.__exit__, None, None, None)
    return proxy


def connect_proxy(work, name="proxy", listen="127.0.0.1:0", maps=(), fault=None, faults_for=(), auth=None):
    log = os.path.join(work, f"{name}.log")
    argv = [PYTHON, os.path.join(FIXTURES, "connect_proxy.py"), "--listen", listen,
            "--port-file", os.path.join(work, f"{name}.port"), "--log", log]
    for m in maps:
        argv += ["--map", m]
    if fault:
        argv += ["--fault", fault]
    for f in faults_for:
        argv += ["--faults-for", f]
    if auth:
        argv += ["--auth", auth]
    p = Process(argv, os.path.join(work, f"{name}.port"))
    p.log = log
    return p


def proxy_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class DirectTrap:
    """Puts the shim's synthetic addresses `addrs` on loopback and listens on `port` there, so that
    a connection made to one of them directly, not through the proxy, succeeds (it is closed at
    once) and is recorded. Without this they have no route in the test's namespace: a direct
    connect would fail on its own, and a check that nothing went direct could not fail."""

    def __init__(self, addrs, port):
        self.addrs, self.port, self.seen, self.lock = sorted(set(addrs)), port, [], threading.Lock()

    def __enter__(self):
        if [name for _, name in socket.if_nameindex()] != ["lo"]:  # a private namespace, never the host's
            raise RuntimeError("DirectTrap adds addresses to lo: run it in a network namespace of its own")
        self.listeners = []
        for addr in self.addrs:
            v6 = ":" in addr
            prefix = 128 if v6 else 32
            subprocess.run(["ip", "addr", "add", f"{addr}/{prefix}", "dev", "lo", *(["nodad"] if v6 else [])],
                           check=True, timeout=10)
            s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
            s.bind((addr, self.port))
            s.listen(64)
            s.setblocking(False)
            self.listeners.append(s)
        self.wake = os.pipe()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _accept(self, listeners):
        with self.lock:
            for s in listeners:
                while True:
                    try:
                        conn, peer = s.accept()
                    except BlockingIOError:
                        break
                    self.seen.append((s.getsockname()[0], peer[0]))
                    conn.close()

    def _serve(self):
        while True:
            ready = select.select([*self.listeners, self.wake[0]], [], [])[0]
            if self.wake[0] in ready:
                return
            self._accept(ready)

    def connections(self):
        """(address, client address) of every direct connection so far: also of those the kernel
        has completed and the thread not yet accepted, so that a connect that returned is in."""
        self._accept(self.listeners)
        return list(self.seen)

    def __exit__(self, *a):
        os.write(self.wake[1], b"x")
        self.thread.join(10)
        for fd in self.wake:
            os.close(fd)
        for s in self.listeners:
            s.close()
        for addr in self.addrs:
            subprocess.run(["ip", "addr", "del", f"{addr}/{128 if ':' in addr else 32}", "dev", "lo"], timeout=10)
