"""Deploying as README.md says ("Deploying in the firewall's agent container"), with the release
tarball (harness.release_tarball()) and the README's own lines, run as written: its blocks are taken
from README.md by their tested-by ids (tests/release/readme_commands.py), so the docs cannot drift
from what runs here.

Each agent runs in a mount namespace of its own whose /opt and /tmp are fresh tmpfs (the machine's
are never touched): the README's install lines put the tarball at the real /opt/awf-shim, and
/tmp/gh-aw/sandbox/agent/logs (where README puts the trace) is this test's directory, so the trace
outlives the namespace as it outlives the firewall's container. The firewall's part is played by
this test: its environment (proxy variables, tokens) and its one-shot-token library, preloaded
first (programs/one_shot_getenv.c, AWF_ONE_SHOT_TOKENS); then the README's entrypoint lines (image
mode) or its awf-shim-run command (chroot mode), and the real Copilot CLI 1.0.102 through a real
Squid to the fake GHE.com tenant (tests/e2e/firewall.py). The CI lines then summarise the trace
with the tarball's awf-shim-trace, next to a stand-in for the firewall's `awf logs summary`."""
import fnmatch
import glob
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import unittest

import harness
import secrets_scan

sys.path.insert(0, os.path.join(harness.ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(harness.ROOT, "tests", "release"))
from firewall import CLI_FLAGS, REDUCING_FLAGS, TOKEN, Firewall, install_copilot  # noqa: E402
import readme_commands  # noqa: E402

PREFIX = "/opt/awf-shim"                     # where README installs the tarball
LOGS = "/tmp/gh-aw/sandbox/agent/logs"       # where README's AWF_SHIM_TRACE writes
ONE_SHOT = os.path.join(harness.PROGRAMS, "one_shot_getenv.so")
PROTECTED = "GITHUB_TOKEN"                   # the variable the one-shot hook hands out once
CLI_ARGS = ["-p", "say hi", *CLI_FLAGS, *REDUCING_FLAGS]

TARBALL = COPILOT = UNPACKED = None
_UNPACKED_DIR = None


def unpack(tarball, into):
    """tar, as the operator's commands do (Debian 12's python3.11 has no tarfile extraction filters)."""
    os.makedirs(into, exist_ok=True)
    subprocess.run(["tar", "-xzf", tarball, "-C", into], check=True)


def setUpModule():
    global TARBALL, COPILOT, UNPACKED, _UNPACKED_DIR
    if harness.SANITIZER:
        raise unittest.SkipTest(f"under {harness.SANITIZER} sanitizer: these tests run the release tarball's objects, "
                                "not the sanitizer build (scripts/test runs them in the plain run)")
    if not os.path.isfile(ONE_SHOT):  # the loader would skip a missing preload with a warning only
        raise AssertionError(f"{ONE_SHOT} is missing: build it (ninja -C {harness.BUILD})")
    TARBALL = harness.release_tarball()
    COPILOT = install_copilot()
    # The tarball once more, outside any namespace, for the checks that read the trace afterwards.
    _UNPACKED_DIR = tempfile.mkdtemp(prefix="awfshim-release-", dir="/tmp")
    unpack(TARBALL, _UNPACKED_DIR)
    (top,) = os.listdir(_UNPACKED_DIR)
    UNPACKED = os.path.join(_UNPACKED_DIR, top)


def tearDownModule():
    if _UNPACKED_DIR:
        shutil.rmtree(_UNPACKED_DIR, ignore_errors=True)


def dockerfile_steps(block, tarball):
    """Shell lines doing what the README's Dockerfile fragment does in a build whose context holds
    the tarball: COPY copies it, RUN runs under /bin/sh -c from / (Docker's defaults)."""
    lines = []
    for ins in readme_commands.dockerfile_instructions(block):
        word, _, rest = ins.partition(" ")
        if word == "COPY":
            *sources, dest = shlex.split(rest)
            unmatched = [s for s in sources if not fnmatch.fnmatch(os.path.basename(tarball), s)]
            if unmatched:
                raise AssertionError(f"README's Dockerfile copies {unmatched}, which does not match the release "
                                     f"tarball {os.path.basename(tarball)}")
            lines.append(f"cp -- {shlex.quote(tarball)} {shlex.quote(dest)}")
        elif word == "RUN":
            lines.append(f"(cd / && /bin/sh -c {shlex.quote(rest)})")
        else:
            raise AssertionError(f"README's Dockerfile has {word}, which this test does not play yet: {ins}")
    return lines


def workflow_step(block, name):
    """The `run:` script of the README's workflow block (exactly one)."""
    scripts = readme_commands.workflow_run_scripts(block)
    if len(scripts) != 1:
        raise AssertionError(f"README's {name} block holds {len(scripts)} run: scripts (want 1)")
    return scripts[0]


class Deployment(unittest.TestCase):
    """A firewall (Squid + the fake tenant) and a scratch directory per test."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="awfshim-deploy-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.fw = Firewall(os.path.join(self.dir, "fw"), copilot=COPILOT).__enter__()
        self.addCleanup(self.fw.__exit__, None, None, None)
        self.logs = self.path("logs")      # mounted at LOGS inside each agent
        self.runner = self.path("runner")  # the runner's working directory: the tarball, stubs
        self.stubs = self.path("stubs")
        for d in (self.logs, self.runner, self.stubs):
            os.makedirs(d)
        os.chmod(self.logs, 0o755)
        self.context(TARBALL)
        os.symlink(COPILOT, os.path.join(self.stubs, "copilot"))  # `copilot` on PATH, as on a runner
        self.stub("sudo", 'exec "$@"')  # the tests run as root already
        self.stub("awf", '[ "$*" = "logs summary --format markdown" ] || '
                         '{ echo "awf stand-in: unexpected arguments: $*" >&2; exit 2; }\n'
                         'echo "### awf logs summary (stand-in)"')
        self.outputs = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def context(self, tarball):
        """The runner's working directory (and the image's build context) holds `tarball` alone."""
        for old in glob.glob(os.path.join(self.runner, "*.tar.gz")):
            os.unlink(old)
        os.symlink(tarball, os.path.join(self.runner, os.path.basename(TARBALL)))

    def stub(self, name, body):
        with open(os.path.join(self.stubs, name), "w") as f:
            f.write(f"#!/bin/sh\n{body}\n")
        os.chmod(os.path.join(self.stubs, name), 0o755)

    def firewall_env(self, proxy_variables=True):
        """What the firewall hands the agent: its proxy variables (or, with proxy_variables=False,
        the proxy for the shim alone: then the CLI does not proxy itself), tokens, the tenant."""
        home = tempfile.mkdtemp(prefix="home-", dir=self.dir)
        env = {"PATH": f"{self.stubs}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home,
               "LANG": "C.UTF-8", "GH_HOST": self.fw.tenant, "COPILOT_GITHUB_TOKEN": TOKEN,
               "NODE_EXTRA_CA_CERTS": self.fw.ca, "AWF_ONE_SHOT_TOKENS": f"{PROTECTED},GH_TOKEN",
               # install-runtimes' layout: DIR/node_modules/@github/copilot-linux-x64/copilot, DIR/pkg-cache
               "COPILOT_PKG_CACHE_HOME": os.path.join(COPILOT.split("/node_modules/")[0], "pkg-cache"),
               **{k: harness.SENTINEL_ENV[k] for k in (PROTECTED, "GH_TOKEN")}}
        if proxy_variables:
            env.update(HTTPS_PROXY=self.fw.squid.proxy_url, https_proxy=self.fw.squid.proxy_url,
                       HTTP_PROXY=self.fw.squid.proxy_url, NO_PROXY="localhost,127.0.0.1,::1")
        else:
            env["AWF_SHIM_PROXY"] = self.fw.squid.proxy_url
        return env

    def agent(self, mode, argv, env, steps=(), timeout=180, tarball=None, logs=None):
        """Runs argv as the agent in a namespace of its own: the tarball installed as README says
        for `mode` ("image": the Dockerfile lines; "chroot": the runner's install step), then the
        firewall's LD_PRELOAD, then README's entrypoint lines ("image") or its chroot command
        (argv: the CLI's arguments), run by bash as written. `steps` (shell lines) replace the agent
        altogether (the CI step); `logs` (shell lines) replace the mount of the trace directory."""
        d = shlex.quote(self.dir)
        lines = ["set -e",
                 # An empty /opt, and a /tmp whose changes go to a tmpfs (the machine's /tmp shows
                 # through, unchanged); this test's directory and the trace directory are real ones.
                 "mount --make-rprivate /",
                 "mount -t tmpfs -o mode=0755 tmpfs /opt",
                 f"mkdir /opt/keep /opt/upper /opt/work && mount --bind {d} /opt/keep",
                 "mount -t overlay overlay -o lowerdir=/tmp,upperdir=/opt/upper,workdir=/opt/work /tmp",
                 f"mount --bind /opt/keep {d} && umount /opt/keep",
                 "mount -t tmpfs -o mode=0755 tmpfs /opt",
                 *(logs if logs is not None else [f"mkdir -p {LOGS} && mount --bind {shlex.quote(self.logs)} {LOGS}"]),
                 "exec 3>&1 1>&2  # the install's own output goes to stderr",
                 "cd /"]
        if mode == "image":
            lines += dockerfile_steps(readme_commands.block("dockerfile"), tarball or TARBALL)
        else:
            install = workflow_step(readme_commands.block("chroot-install"), "chroot-install")
            lines.append(f"(cd {shlex.quote(self.runner)} && bash --noprofile --norc -eo pipefail -c "
                         f"{shlex.quote(install)})")
        lines.append("exec 1>&3 3>&-")
        if steps:
            lines += list(steps)
        elif mode == "image":
            # The firewall's entrypoint: its own preload (by overwriting), then README's lines.
            lines += [f"export LD_PRELOAD={shlex.quote(ONE_SHOT)}", readme_commands.block("entrypoint"),
                      f"cd {shlex.quote(self.workdir())}", 'exec "$@"']
        else:
            # Chroot mode: AWF copies its library to /tmp/awf-lib, exports LD_PRELOAD, and runs the
            # agent's command (README's chroot command, with the CLI's arguments for "$@").
            command = self.path("agent-command.sh")
            with open(command, "w") as f:
                f.write(readme_commands.block("chroot-command"))
            lines += ["mkdir -p /tmp/awf-lib", f"cp {shlex.quote(ONE_SHOT)} /tmp/awf-lib/one-shot-token.so",
                      "export LD_PRELOAD=/tmp/awf-lib/one-shot-token.so",
                      f"cd {shlex.quote(self.workdir())}", f'exec bash {shlex.quote(command)} "$@"']
        script = self.path(f"agent-{mode}.sh")
        with open(script, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run(["unshare", "-m", "--", "bash", script, *argv], env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        self.keep_for_secrets_scan(r.stderr, f"stderr of the {mode} agent ({argv[0] if argv else 'steps'})")
        return r

    def workdir(self):
        return tempfile.mkdtemp(prefix="cwd-", dir=self.dir)

    def traces(self):
        """{pid: events} of the trace files in LOGS; each is awf-shim-<pid>.jsonl, 0600, a regular
        file, holding that process's events alone."""
        out = {}
        for path in sorted(glob.glob(os.path.join(self.logs, "*"))):
            name = os.path.basename(path)
            m = re.fullmatch(r"awf-shim-(\d+)\.jsonl", name)
            self.assertTrue(m, f"{name} in the trace directory is not awf-shim-<pid>.jsonl")
            st = os.lstat(path)
            self.assertTrue(stat.S_ISREG(st.st_mode), f"{name} is not a regular file")
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f"{name}: mode {stat.S_IMODE(st.st_mode):o}")
            events = harness.read_trace(path)
            pid = int(m.group(1))
            self.assertTrue(events, f"{name} is empty")
            self.assertEqual({e["pid"] for e in events}, {pid}, f"{name} holds events of other processes")
            out[pid] = events
            with open(path, encoding="utf-8") as f:
                self.keep_for_secrets_scan(f.read(), f"trace {LOGS}/{name} of test_deploy")
        return out

    def keep_for_secrets_scan(self, text, origin):
        """Hands what a deployed process wrote to run.py's secrets scan (the scan sees processes
        whose LD_PRELOAD names the front when they start; these get it from README's lines), and
        checks it here for the tokens they were given."""
        for secret in (TOKEN, harness.SENTINEL_ENV[PROTECTED], harness.SENTINEL_ENV["GH_TOKEN"], harness.SENTINEL_MARK):
            self.assertNotIn(secret, text, f"a token in the {origin}")
        registry = secrets_scan.RUN
        if registry is None or not text:
            return
        self.outputs += 1
        copy = os.path.join(registry.dir, "stderr", f"deploy-{self.id().rsplit('.', 1)[-1]}-{self.outputs}.txt")
        with open(copy, "w") as f:
            f.write(text)
        registry.add_output_file(copy, f"{origin} in {self.id()}")

    def assert_answered(self, r):
        self.assertEqual(r.returncode, 0, f"the CLI failed:\n{r.stderr[-3000:]}")
        self.assertIn("Hello from the fake tenant", r.stdout)

    def cli_tunnels(self, traces, by_application):
        """The CLI's tunnels to the tenant's API hosts that Squid opened, from the trace."""
        cli = [events for events in traces.values() if any(e["ev"] == "init" and e["exe"] == "copilot" for e in events)]
        self.assertTrue(cli, f"no trace of the copilot process in {LOGS}, where README's lines put it "
                             f"({len(traces)} trace file(s) there)")
        squid = self.fw.squid.proxy_url.removeprefix("http://")
        tunnels = [e for events in cli for e in events if e["ev"] == "tunnel"]
        # The CLI's own CONNECT goes over a connection it made to Squid; the shim's names Squid.
        to_squid = {(c["pid"], c["fd"]) for events in cli for c in events if c["ev"] == "connect" and c["addr"] == squid}
        for host in (f"api.{self.fw.tenant}", f"copilot-api.{self.fw.tenant}"):
            opened = [t for t in tunnels if t["target"] == f"{host}:443" and t.get("status") == 200
                      and (t.get("by") == "application") == by_application
                      and (t.get("proxy") == squid if not by_application else (t["pid"], t["fd"]) in to_squid)]
            self.assertTrue(opened, f"no tunnel to {host}:443 through Squid in the trace "
                                    f"({'by the CLI itself' if by_application else 'by the shim'}): {tunnels}")
            entries = self.fw.squid.wait_for_log(lambda e, h=host: e["method"] == "CONNECT" and e["url"] == f"{h}:443",
                                                 count=1, timeout=15)
            self.assertTrue(any(e["status"] == 200 and e["squid_status"].startswith("TCP_TUNNEL") for e in entries),
                            f"Squid logged no open tunnel to {host}:443: {entries}")
        return cli


class ImageMode(Deployment):
    def test_the_cli_answers_through_squid_with_the_firewalls_proxy_variables(self):
        r = self.agent("image", [COPILOT, *CLI_ARGS], self.firewall_env())
        self.assert_answered(r)
        traces = self.traces()
        (cli,) = self.cli_tunnels(traces, by_application=True)
        init = next(e for e in cli if e["ev"] == "init")
        self.assertEqual(init["settings"]["proxy_source"], "HTTPS_PROXY", init)
        self.assertFalse([c for c in cli if c["ev"] == "connect" and c["decision"] == "tunnel"],
                         "the CLI proxies itself: the shim must not tunnel it a second time")
        # The tarball's trace reader reads the trace in each of its formats.
        tool = os.path.join(UNPACKED, "bin", "awf-shim-trace")
        files = sorted(glob.glob(os.path.join(self.logs, "awf-shim-*.jsonl")))
        api = f"api.{self.fw.tenant}"
        for fmt in ("pretty", "json", "markdown"):
            with self.subTest(format=fmt):
                s = subprocess.run([tool, "summary", "--format", fmt, *files], capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(s.returncode, 0, f"summary --format {fmt}: {s.stderr}")
                if fmt == "json":
                    hosts = {h["host"]: h for h in json.loads(s.stdout)["hosts"]}
                    self.assertIn(api, hosts, s.stdout[:2000])
                else:
                    self.assertIn(f"`{api}`" if fmt == "markdown" else api, s.stdout)
                if fmt == "markdown":
                    self.assertTrue(s.stdout.startswith("### awf-shim"), s.stdout[:300])

    def test_without_proxy_variables_the_shim_carries_the_cli(self):
        r = self.agent("image", [COPILOT, *CLI_ARGS], self.firewall_env(proxy_variables=False))
        self.assert_answered(r)
        (cli,) = self.cli_tunnels(self.traces(), by_application=False)
        routed = [c for c in cli if c["ev"] == "connect" and c["decision"] == "tunnel"]
        self.assertTrue(routed, "the shim tunnelled none of the CLI's connections")

    def test_the_one_shot_hook_still_hides_the_token_and_the_shim_is_on_in_each_process(self):
        # Two processes under the same preload list, each reading the protected variable twice
        # through libc's getenv (the hook first in the lookup scope) and looking up a routed name.
        program = self.path("reader.py")
        with open(program, "w") as f:
            f.write(READER)
        r = self.agent("image", ["bash", "-c", f'{harness.PYTHON} "$0" && {harness.PYTHON} "$0"', program],
                       self.firewall_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        reports = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(len(reports), 2, r.stdout)
        want = hashlib.sha256(harness.SENTINEL_ENV[PROTECTED].encode()).hexdigest()
        front, engine = f"{PREFIX}/lib/libawfshim.so", f"{PREFIX}/lib/libawfshim-core.so"
        for report in reports:
            self.assertEqual(report["preload"], f"{ONE_SHOT} {front}",
                             "README's lines must append the front after the firewall's library")
            self.assertEqual(report["first"], want, f"the first read of {PROTECTED} must give its value")
            self.assertIsNone(report["second"], f"the one-shot hook must hide {PROTECTED} after its first read "
                                                "(is it still preloaded, ahead of the front?)")
            self.assertIn(ONE_SHOT, report["mapped"])
            self.assertIn(front, report["mapped"])
            self.assertIn(engine, report["mapped"], "the engine, next to the front in the tarball, was not loaded")
            self.assertTrue(report["addrs"], report)
            synthetic = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("fd77:6166:7368:696d::/64"))
            for a in report["addrs"]:
                self.assertTrue(any(ipaddress.ip_address(a) in n for n in synthetic),
                                f"the shim did not answer the routed lookup (fake DNS): {report['addrs']}")
        # The trace: where README says, one file per process (bash, which looks nothing up, has none).
        traces = self.traces()
        self.assertEqual(set(traces), {rep["pid"] for rep in reports},
                         f"trace files {sorted(traces)} for processes {[rep['pid'] for rep in reports]}")
        for pid, events in traces.items():
            dns = [e for e in events if e["ev"] == "dns" and e["host"] == f"api.{self.fw.tenant}"]
            self.assertEqual([e["mode"] for e in dns], ["fake"], events)


class TraceDirectory(Deployment):
    def test_one_that_is_missing_or_reached_through_a_symlink_gets_no_trace_and_a_line_on_stderr(self):
        program = self.path("reader.py")
        with open(program, "w") as f:
            f.write(READER)
        real = self.path("elsewhere")
        os.makedirs(real)
        for case, setup in [("missing", []),
                            ("symlink", [f"mkdir -p {os.path.dirname(LOGS)}", f"ln -s {shlex.quote(real)} {LOGS}"])]:
            with self.subTest(case):
                r = self.agent("image", [harness.PYTHON, program], self.firewall_env(), logs=setup)
                self.assertEqual(r.returncode, 0, r.stderr)
                (report,) = [json.loads(line) for line in r.stdout.splitlines()]
                self.assertTrue(report["addrs"], "routing must go on without a trace")
                path = f"{LOGS}/awf-shim-{report['pid']}.jsonl"
                why = "No such file or directory" if case == "missing" else "is a symbolic link or not a directory"
                self.assertRegex(r.stderr, rf"awf-shim: AWF_SHIM_TRACE: cannot open '{re.escape(path)}': .*{why}")
                self.assertEqual(os.listdir(real), [], "the trace was written through a symbolic link")


class Install(Deployment):
    def test_both_installs_refuse_a_tarball_whose_files_do_not_match_its_sha256sums(self):
        # The same tarball with one byte of the front changed (the name, the layout and SHA256SUMS
        # unchanged): README's sha256sum line must stop either install before the agent starts.
        tampered = self.path(os.path.join("tampered", os.path.basename(TARBALL)))
        os.makedirs(os.path.dirname(tampered))
        work = self.path("unpacked")
        unpack(TARBALL, work)
        (top,) = os.listdir(work)
        with open(os.path.join(work, top, "lib", "libawfshim.so"), "r+b") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 0xFF]))
        with tarfile.open(tampered, "w:gz") as t:
            t.add(os.path.join(work, top), arcname=top)
        self.context(tampered)
        for mode in ("image", "chroot"):
            with self.subTest(mode=mode):
                r = self.agent(mode, [], self.firewall_env(), steps=["echo the agent starts"], tarball=tampered)
                self.assertNotEqual(r.returncode, 0, f"README's {mode} install accepted a tampered tarball")
                self.assertNotIn("the agent starts", r.stdout)
                self.assertIn("lib/libawfshim.so: FAILED", r.stderr)


class ChrootMode(Deployment):
    def test_installed_on_the_runner_the_cli_runs_under_awf_shim_run_and_ci_summarises_it(self):
        r = self.agent("chroot", CLI_ARGS, self.firewall_env())
        self.assert_answered(r)
        traces = self.traces()
        (cli,) = self.cli_tunnels(traces, by_application=True)
        # The CI step, on the runner after the AWF step (the install step ran there before it).
        summary = self.path("step-summary.md")
        env = {**self.firewall_env(), "GITHUB_STEP_SUMMARY": summary}
        ci = workflow_step(readme_commands.block("ci"), "ci")
        s = self.agent("chroot", [], env, steps=[f"cd {shlex.quote(self.runner)}",
                                                 f"bash --noprofile --norc -eo pipefail -c {shlex.quote(ci)}"])
        self.assertEqual(s.returncode, 0, s.stderr)
        with open(summary) as f:
            text = f.read()
        self.assertTrue(text.startswith("### awf logs summary (stand-in)\n"), text[:300])
        self.assertIn("### awf-shim", text)
        self.assertIn(f"`api.{self.fw.tenant}`", text, "the summary does not show the CLI's tunnels")
        self.assertEqual(len(self.traces()), len(traces), "the CI step must read the trace, not add to it")


# Run twice by test_the_one_shot_hook_…: what the process sees, with no secret on stdout.
READER = r'''
import ctypes, hashlib, json, os, socket
getenv = ctypes.CDLL(None).getenv
getenv.restype = ctypes.c_char_p
first, second = getenv(b"GITHUB_TOKEN"), getenv(b"GITHUB_TOKEN")
addrs = sorted({a[4][0] for a in socket.getaddrinfo("api." + os.environ["GH_HOST"], 443, type=socket.SOCK_STREAM)})
with open("/proc/self/maps") as f:
    mapped = sorted({line.split()[-1] for line in f if line.rstrip().endswith(".so")})
print(json.dumps({"pid": os.getpid(), "preload": os.environ.get("LD_PRELOAD"), "mapped": mapped, "addrs": addrs,
                  "first": hashlib.sha256(first).hexdigest() if first else None,
                  "second": hashlib.sha256(second).hexdigest() if second else None}))
'''


if __name__ == "__main__":
    unittest.main()
