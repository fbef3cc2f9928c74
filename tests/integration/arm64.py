"""The arm64 (aarch64) test root: a Debian 12 arm64 root filesystem (curl, python3, git,
ca-certificates) in which the tests run real arm64 clients under the kernel's binfmt_misc entry
for qemu-aarch64, while Squid and the fixtures stay native on the test namespace's loopback.

scripts/lib/install-arm64-root builds the root once into the cache and registers qemu-aarch64
(both before any namespace); scripts/lib/install-runtimes node-24-arm64 copilot-1.0.102-arm64
installs the arm64 runtimes. This module never installs anything: a test that finds something
missing fails at once, naming what to run.

run_in_root() runs a program in the root: in a private mount namespace (unshare -m) it mounts a
throwaway overlay over the root (writes go to a tmpfs and vanish with the call: the cached root
stays as built), binds into it /proc, /dev, /sys, /etc/hosts and /etc/resolv.conf as the test
namespace has them, the runtime cache and the aarch64 build tree (read-only, at their own paths,
so that runtime("node-24-arm64") and the build's paths work unchanged inside), and the caller's
directories, then chroots and execs. The network is the caller's: 127.0.0.1 inside is the test
namespace's loopback. A program given the aarch64 front (shim_env()) is reported to run.py's
secrets scan like any process under the shim.

Run as a script (python3 arm64.py --enter SPEC), it is that mount-and-exec step itself."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("AWF_SHIM_CACHE") or os.path.expanduser("~/.cache/awf-shim")
ROOTFS = os.path.join(CACHE, "arm64-root")
INSTALLER = os.path.join(REPO, "scripts", "lib", "install-arm64-root")
BINFMT = "/proc/sys/fs/binfmt_misc"
EM_AARCH64 = 183  # ELF e_machine
EM_X86_64 = 62

# The shim's aarch64 build (a cross build; another piece of work). Bound into the root read-only
# at this same path when it exists, so that LD_PRELOAD=FRONT_AARCH64 works inside as it is.
BUILD_AARCH64 = os.environ.get("AWF_BUILD_AARCH64", os.path.join(REPO, "build-aarch64"))
FRONT_AARCH64 = os.path.join(BUILD_AARCH64, "libawfshim.so")
ENGINE_AARCH64 = os.path.join(BUILD_AARCH64, "libawfshim-core.so")
TRACE_TOOL_AARCH64 = os.path.join(BUILD_AARCH64, "shim", "tools", "awf-shim-trace")
PROGRAMS_AARCH64 = os.path.join(BUILD_AARCH64, "tests", "integration", "programs")

# The PATH of a program in the root when the caller gives no environment.
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _recipe():
    with open(INSTALLER) as f:
        m = re.search(r'^recipe="([^"]*)"$', f.read(), re.M)
    if not m:
        raise AssertionError(f"{INSTALLER} names no recipe")
    return m.group(1)


def arm64_root():
    """The path of the arm64 root. Never builds it: fails at once when it is missing or was built
    from another recipe than install-arm64-root's."""
    try:
        with open(os.path.join(ROOTFS, ".ready")) as f:
            ready = f.readline().rstrip("\n") == f"recipe: {_recipe()}"
    except OSError:
        ready = False
    if not ready or not os.path.exists(os.path.join(ROOTFS, "usr", "bin", "curl")):
        raise AssertionError(f"no arm64 root in {ROOTFS} (or built from another recipe): "
                             "run scripts/lib/install-arm64-root (before any network namespace)")
    return ROOTFS


def ensure_binfmt():
    """Checks that the kernel runs arm64 programs through qemu in a chroot: binfmt_misc is on and
    its qemu-aarch64 entry is there, enabled, with the F flag. Registers nothing (that is
    install-arm64-root's, outside the test namespace); on an aarch64 host there is nothing to check."""
    if os.uname().machine == "aarch64":
        return
    fix = "run scripts/lib/install-arm64-root (it registers qemu-aarch64, before any namespace)"
    try:
        with open(os.path.join(BINFMT, "status")) as f:
            status = f.read().strip()
    except OSError:
        raise AssertionError(f"binfmt_misc is not mounted on {BINFMT}: {fix}")
    if status != "enabled":
        raise AssertionError(f"binfmt_misc is disabled ({BINFMT}/status): {fix}")
    try:
        with open(os.path.join(BINFMT, "qemu-aarch64")) as f:
            lines = f.read().splitlines()
    except OSError:
        raise AssertionError(f"no qemu-aarch64 entry in {BINFMT}: {fix}")
    if not lines or lines[0] != "enabled":
        raise AssertionError(f"the qemu-aarch64 binfmt entry is disabled: {fix}")
    flags = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("flags:")), "")
    if "F" not in flags:
        raise AssertionError(f"the qemu-aarch64 binfmt entry lacks the F flag (flags {flags!r}), so it cannot run "
                             f"programs in a chroot: echo -1 > {BINFMT}/qemu-aarch64, then {fix}")


def in_root(path, root=None):
    """The host path of `path` as the root sees it, its symbolic links resolved inside the root
    (an absolute link target is the root's, not the host's)."""
    root = root or arm64_root()
    parts = [p for p in path.split("/") if p]
    resolved, hops = [], 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        host = os.path.join(root, *resolved, part)
        if os.path.islink(host):
            hops += 1
            if hops > 40:
                raise OSError(f"too many symbolic links resolving {path} in {root}")
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
        else:
            resolved.append(part)
    return os.path.join(root, *resolved)


def elf_machine(path):
    """The e_machine of ELF file `path` (a host path: see in_root()); 183 is aarch64."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise AssertionError(f"{path} is not an ELF file")
    endian = "<" if head[5] == 1 else ">"
    return struct.unpack(endian + "H", head[18:20])[0]


def aarch64_build(*paths):
    """Checks that the aarch64 build has the front, the engine and `paths` (its files, as aarch64
    ELF objects); never builds: fails at once naming what to run."""
    for path in (FRONT_AARCH64, ENGINE_AARCH64, *paths):
        if not os.path.isfile(path) or elf_machine(path) != EM_AARCH64:
            raise AssertionError(f"{path} is missing or not an aarch64 object: build it (meson setup build-aarch64 "
                                 f"--cross-file cross/aarch64-linux-gnu.ini; ninja -C build-aarch64)")


def shim_env(home, trace=None, **extra):
    """The environment of a program in the root under the aarch64 front (AWF_SHIM=1, the fake
    credentials of harness.SENTINEL_ENV); extra holds AWF_SHIM_* and the like, None removes one."""
    from harness import SENTINEL_ENV
    env = {"PATH": ROOT_PATH, "HOME": home, "LANG": "C.UTF-8", "LD_PRELOAD": FRONT_AARCH64, "AWF_SHIM": "1",
           **SENTINEL_ENV}
    if trace:
        env["AWF_SHIM_TRACE"] = trace
    env.update(extra)
    return {k: str(v) for k, v in env.items() if v is not None}


def _watched(argv, env, cwd):
    """run.py's secrets scan (secrets_scan.RUN) sees a process under the shim in the environment
    Popen is given; a program in the root gets its own through the spec, so run_in_root reports it
    to the scan itself, which then keeps its trace (bind the trace's directory at its own path) and
    its stderr, and the trace recount reads that trace too. None outside run.py or without the
    shim (the registry decides)."""
    registry = getattr(sys.modules.get("secrets_scan"), "RUN", None)
    if registry is None:
        return None
    proc = registry.spawned({"args": argv, "env": env, "cwd": cwd, "stdout": subprocess.PIPE,
                             "stderr": subprocess.PIPE})
    return (registry, proc) if proc else None


def _default_binds():
    """(source, target, read-only) of every call: the test namespace's view of the system and the
    cached runtimes and the aarch64 build, each at its own path."""
    binds = [("/proc", "/proc", False), ("/dev", "/dev", False), ("/sys", "/sys", True)]
    for f in ("/etc/hosts", "/etc/resolv.conf"):
        if os.path.exists(f):
            binds.append((f, f, True))
    for d in (os.path.join(CACHE, "runtimes"), BUILD_AARCH64):
        if os.path.isdir(d):
            binds.append((d, d, True))
    return binds


def _bind_spec(b):
    """A caller's bind: PATH (read-write, at the same path), (SOURCE, TARGET) or
    (SOURCE, TARGET, "ro")."""
    if isinstance(b, (str, os.PathLike)):
        return (os.fspath(b), os.fspath(b), False)
    src, dst, *mode = b
    return (os.fspath(src), os.fspath(dst), bool(mode) and mode[0] == "ro")


def run_in_root(argv, env=None, binds=(), cwd="/", timeout=None, check=False, **kw):
    """Runs argv in the arm64 root (see the module's doc) and returns its CompletedProcess (text,
    output captured, like harness.run). argv[0] is looked up in env's PATH inside the root.
    env: the program's whole environment (default: a minimal one). binds: the caller's
    directories or files to see inside, each a path (read-write, at the same path), (SOURCE,
    TARGET) or (SOURCE, TARGET, "ro"). kw goes to subprocess.run (input=…, stdin=…)."""
    from harness import HANG_GUARD  # not at import time: --enter runs without the test's modules
    root = arm64_root()
    ensure_binfmt()
    if env is None:
        env = {"PATH": ROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    spec = {"root": root, "argv": [os.fspath(a) for a in argv], "env": {k: str(v) for k, v in env.items()},
            "cwd": cwd, "binds": [*_default_binds(), *map(_bind_spec, binds)]}
    scratch = tempfile.mkdtemp(prefix="awfshim-arm64-", dir="/tmp")
    spec["scratch"] = scratch
    kw.setdefault("capture_output", not ("stdout" in kw or "stderr" in kw))
    kw.setdefault("text", True)
    watch = _watched(spec["argv"], spec["env"], cwd) if kw["capture_output"] and kw["text"] else None
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", sys.executable or "/usr/bin/python3",
                            os.path.abspath(__file__), "--enter", json.dumps(spec)],
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                           timeout=timeout or HANG_GUARD, **kw)
    except subprocess.TimeoutExpired as e:
        if watch:
            watch[0].output(watch[1], e.output, e.stderr)
        raise
    else:
        if watch:
            watch[0].output(watch[1], r.stdout, r.stderr)
        if check:
            r.check_returncode()
        return r
    finally:
        if watch:
            watch[0].exited(watch[1])
        # The tmpfs and the overlay were mounted only in the call's namespace: here it is an empty
        # directory (a program that left a daemon behind keeps that namespace, not this directory).
        shutil.rmtree(scratch, ignore_errors=True)


class Fixtures:
    """What an arm64 test module shares, from setUpModule to tearDownModule: the root and binfmt
    checked first (without them every test fails at once, naming what to run), a scratch
    directory (.dir, bound into the root at its own path by the tests), a test CA (.ca) for
    `names`, the HTTPS upstream (and with `echo` the echo upstream, which Squid then also
    tunnels to) and a Squid (.squid) on port 3129: the end-to-end tests' Firewall runs its own
    on 3128."""

    def __init__(self, prefix, names, echo=False):
        self.prefix, self.names, self.echo = prefix, list(names), echo
        self.dir = self.ca = self.squid = None
        self._stack = []

    def start(self):
        import net  # not at the top: `arm64.py --enter` (the mount-and-exec step) needs neither
        from squid import Squid
        arm64_root()
        ensure_binfmt()
        self.dir = tempfile.mkdtemp(prefix=self.prefix, dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.ca = net.make_ca(os.path.join(self.dir, "ca"), self.names)
        upstreams = [("https", [f"{net.UPSTREAM_IP}:443"], "http", os.path.join(self.dir, "ca"))]
        if self.echo:
            upstreams.append(("echo", [f"{net.UPSTREAM_IP}:{net.ECHO_PORT}"], "echo", None))
        for name, listens, mode, tls_dir in upstreams:
            log = os.path.join(self.dir, f"{name}.log")
            self.add(net.upstream(self.dir, name, listens, mode, tls_dir, log=log).__enter__())
        self.squid = Squid(os.path.join(self.dir, "squid"), port=3129, allow=[f".{net.TENANT}"],
                           hosts={net.API: net.UPSTREAM_IP}, extra_ports=[net.ECHO_PORT] if self.echo else None).start()
        return self

    def add(self, entered):
        """A fixture already entered, exited with these."""
        self._stack.append(entered)
        return entered

    def stop(self):
        if self.squid:
            self.squid.stop(fast=True)
        for p in reversed(self._stack):
            p.__exit__(None, None, None)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _mount(*args):
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"arm64.py: mount {' '.join(args)}: {r.stderr.strip()}\n")
        sys.exit(125)


def _enter(spec):
    """In a private mount namespace: overlay, binds, chroot, exec. Exit status 125 for a failure
    of its own, 127 when the program is not found."""
    scratch = spec["scratch"]
    _mount("-t", "tmpfs", "-o", "mode=0755", "awf-arm64", scratch)
    for d in ("upper", "work", "merged"):
        os.mkdir(os.path.join(scratch, d))
    merged = os.path.join(scratch, "merged")
    _mount("-t", "overlay", "-o", f"lowerdir={spec['root']},upperdir={scratch}/upper,workdir={scratch}/work",
           "awf-arm64-root", merged)
    for src, dst, ro in spec["binds"]:
        target = merged + "/" + dst.lstrip("/")
        if os.path.isdir(src):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target) or os.path.islink(target):
                if os.path.islink(target):
                    os.unlink(target)
                open(target, "a").close()
        _mount("--rbind", src, target)
        if ro:
            _mount("-o", "remount,bind,ro", target)
    os.chroot(merged)
    os.chdir(spec["cwd"])
    argv, env = spec["argv"], spec["env"]
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        sys.stderr.write(f"arm64.py: cannot run {argv[0]} in the arm64 root: {e}\n")
        sys.exit(127 if isinstance(e, FileNotFoundError) else 126)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--enter":
        sys.exit("usage: arm64.py --enter SPEC (run by run_in_root(), inside unshare -m)")
    _enter(json.loads(sys.argv[2]))
