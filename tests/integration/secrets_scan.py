"""The secrets scan: every process started under the shim during a run of run.py is seen, its
trace files and its stderr are kept, and at the end all of them are searched for every secret
any of those processes was given — the fake sentinels of harness.py (SENTINEL_*) and whatever
else a test hands a shimmed process (proxy URL passwords, Authorization headers, secret query
values, *TOKEN*/*SECRET*/*PASSWORD* variables) — plain, case-folded, percent-encoded (whole,
or in part, with either case of hex digits, up to three times over: each line is also searched
percent-decoded, as the shim's redaction reads it), JSON-escaped and base64 (standard and
URL-safe, at any alignment, so Basic `user:password` is found too).

How processes are seen: install() replaces subprocess.Popen (which subprocess.run uses) with a
subclass that, for a process whose LD_PRELOAD holds libawfshim (or that is awf-shim-run), notes
its trace path(s) (AWF_SHIM_TRACE or the config file's "trace", `%p` as a wildcard), copies the
trace files into the run directory when the process exits (tests delete their scratch
directories), and saves the stderr that communicate() returns (or the file stderr went to).
A child that inherits the runner's stderr is covered by a tee of the runner's own fd 2.

run.py runs ScannerSelfTest (the negative control: planted secrets are found) first and
SecretsScan (the verdict) after every other test; SecretsScan also fails when it scanned too
little to mean anything."""
import base64
import glob
import hashlib
import inspect
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

import harness

_ORIGINAL_POPEN = subprocess.Popen
_POPEN_SIGNATURE = inspect.signature(_ORIGINAL_POPEN.__init__)
_ACTIVE = None            # the Registry that Popen reports to
_ACTIVE_LOCK = threading.Lock()
RUN = None                # the run-wide Registry run.py installs
FULL_RUN = False          # run.py: no -k, no module list: every suite ran

MIN_SECRET = 8            # shorter discovered values are only scanned as "user:password"
MIN_B64 = 8               # shortest base64 fragment worth searching for

_PROXY_VARS = ("AWF_SHIM_PROXY", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_SECRET_VAR = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|PRIVATE_KEY", re.I)
# The shim's own rule for secret parameter names (shim/core/redact.cc, IsSecretName), on a name
# percent-decoded, in lower case, with '_' for '-'.
_SECRET_NAME_EXACT = {"code", "sig", "key", "auth", "jwt", "state", "sid", "pass", "otp", "ticket"}
_SECRET_NAME_PART = re.compile(r"token|secret|password|passwd|passphrase|pwd|signature|api_key|apikey|access_key|"
                               r"private_key|subscription_key|credential|session|sessid|authorization|bearer|"
                               r"assertion|verifier")
DECODE_ROUNDS = 3         # the rounds of percent-decoding the shim's redaction sees through
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s?#'\"]*)@")
_AUTH_HEADER = re.compile(r"(?i)\b(?:proxy-)?authorization\s*:\s*(\S+)(?:[ \t]+(\S+))?")
_QUERY_PAIR = re.compile(r"(?=[?&;]([A-Za-z0-9_.%\[\]-]+)=([^&;#\s'\"]+))")  # overlapping: "?next=/cb?code=…"


# ---------------------------------------------------------------------------------------------
# Secrets and the forms they are searched in

def percent_decodings(data):
    """`data` (bytes) percent-decoded once, twice, … up to DECODE_ROUNDS times, while that
    changes it."""
    out = []
    for _ in range(DECODE_ROUNDS):
        decoded = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
        if decoded == data:
            break
        out.append(decoded)
        data = decoded
    return out


def secret_name(name):
    """Whether the shim masks the value of a parameter so named."""
    n = urllib.parse.unquote(name)
    for _ in range(DECODE_ROUNDS - 1):
        n = urllib.parse.unquote(n)
    n = n.lower().replace("-", "_")
    return n in _SECRET_NAME_EXACT or bool(_SECRET_NAME_PART.search(n))


def mask(value):
    """How a secret is named in a report: its GitHub prefix if it has one, its length and a hash;
    never the value itself."""
    prefix = next((p for p in ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_") if value.startswith(p)), "")
    return f"{prefix}…({len(value)} chars, sha256 {hashlib.sha256(value.encode()).hexdigest()[:8]})"


def _b64_fragments(data):
    """The base64 characters that depend on `data` alone, for each of the three alignments it
    can have inside a longer encoded string; standard and URL-safe alphabets."""
    out = set()
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + data)
        start, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6
        frag = enc[start:end]
        if len(frag) >= MIN_B64:
            out.add(frag)
            out.add(frag.translate(bytes.maketrans(b"+/", b"-_")))
    return out


class Secret:
    # The order a line's hit is reported in; "decoded": found in the line percent-decoded (the
    # secret, or what surrounds it, encoded in part, or more than once).
    FORMS = ("plain", "escaped", "encoded", "decoded", "base64")

    def __init__(self, value, label):
        self.value, self.label = value, label
        raw = value.encode()
        self.folded = {}  # searched in the case-folded text
        for form, needle in [("encoded", urllib.parse.quote(value, safe="").encode()),
                             ("encoded", urllib.parse.quote_plus(value).encode()),
                             ("encoded", "".join(f"%{b:02x}" for b in raw).encode()),  # every byte
                             ("escaped", json.dumps(value)[1:-1].encode()),
                             ("plain", raw)]:
            self.folded[needle.lower()] = form
        self.decoded = raw.lower()  # searched in each line's percent-decodings, case-folded
        self.exact = {f: "base64" for f in _b64_fragments(raw)}  # case matters


class Hit:
    def __init__(self, where, line, secret, form, origin):
        self.where, self.line, self.secret, self.form, self.origin = where, line, secret, form, origin

    def __str__(self):
        return (f"{self.where}:{self.line}: {self.form} form of {self.secret.label} [{mask(self.secret.value)}]"
                f" — {self.origin}")


def scan_bytes(data, secrets):
    """(secret, form, offset) of every occurrence of any secret in any form in `data`."""
    found = []
    lower = data.lower()
    for s in secrets:
        for needle, form in s.folded.items():
            at = lower.find(needle)
            while at >= 0:
                found.append((s, form, at))
                at = lower.find(needle, at + 1)
        for needle, form in s.exact.items():
            at = data.find(needle)
            while at >= 0:
                found.append((s, form, at))
                at = data.find(needle, at + 1)
    start = 0
    for line in data.split(b"\n"):
        if b"%" in line:
            views = [d.lower() for d in percent_decodings(line)]
            found += [(s, "decoded", start) for s in secrets if any(s.decoded in v for v in views)]
        start += len(line) + 1
    return found


def scan_file(path, secrets, origin=""):
    """Hits in one file, one per line (the most telling: a whole secret over the mark, the
    plainest form), and the file's number of lines."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    best = {}
    for s, form, at in scan_bytes(data, secrets):
        line = data.count(b"\n", 0, at) + 1
        rank = (s.value == harness.SENTINEL_MARK, Secret.FORMS.index(form), -len(s.value))
        if line not in best or rank < best[line][0]:
            best[line] = (rank, Hit(path, line, s, form, origin))
    return [best[line][1] for line in sorted(best)], lines


def secrets_in_text(text, where):
    """Secrets a piece of a command line or an environment value hands a process."""
    out = []
    for m in _URL_USERINFO.finditer(text):
        user, _, password = m.group(1).partition(":")
        user_d, password_d = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if password_d:
            out.append((password_d, f"password of a URL in {where}"))
            out.append((f"{user_d}:{password_d}", f"user:password of a URL in {where}"))
        elif user_d:
            out.append((user_d, f"user (token) of a URL in {where}"))
    for m in _AUTH_HEADER.finditer(text):
        out.append((m.group(2) or m.group(1), f"Authorization header credential in {where}"))
    raw = text.encode("utf-8", "surrogateescape")
    for view in [text] + [d.decode("utf-8", "surrogateescape") for d in percent_decodings(raw)]:
        for m in _QUERY_PAIR.finditer(view):  # also a URL's inside a value once decoded
            if secret_name(m.group(1)):
                out.append((urllib.parse.unquote(m.group(2)), f"query value {m.group(1)}= in {where}"))
    return out


# ---------------------------------------------------------------------------------------------
# What the run saw

class Proc:
    def __init__(self, n, test, argv, cwd, traces, stderr_file, stderr_mode):
        self.n, self.test, self.argv, self.cwd = n, test, argv, cwd
        self.traces = traces              # glob patterns of the trace files; may be empty
        self.stderr_file = stderr_file    # where stderr went when it was a file
        self.stderr_mode = stderr_mode    # "pipe", "file", "inherited", "discarded", "stdout-pipe"
        self.exited = False
        self.pid = None
        self.kept = set()                 # trace files copied
        self.delivered = set()            # sentinels it was given

    @property
    def exe(self):
        return os.path.basename(self.argv[0]) if self.argv else "?"

    def origin(self):
        return f"{self.exe} (process #{self.n}, pid {self.pid}) in {self.test}"


class Registry:
    def __init__(self, directory):
        self.dir = directory
        for sub in ("traces", "stderr"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        self.lock = threading.RLock()
        self.secrets = {}           # value -> Secret
        self.procs = []
        self.snapshots = {}         # (original path, dev, inode) -> (snapshot path, origin)
        self.outputs = []           # (file, origin, from a process under the shim)
        self.deliveries = {}        # sentinel value -> number of shimmed processes given it
        self.watch_errors = []      # processes the watcher could not look at
        self.spawn_count = 0
        self.current_test = "(outside a test)"
        for value, label in harness.SENTINELS.items():
            self.add_secret(value, label)
        self.add_secret(harness.SENTINEL_MARK, "the sentinel mark (a part of every sentinel)")

    def add_secret(self, value, label):
        if not value:
            return
        with self.lock:
            if value not in self.secrets:
                self.secrets[value] = Secret(value, label)

    # -- seeing processes ---------------------------------------------------------------------
    def spawned(self, bound):
        """A Popen about to start (its bound arguments); a Proc if it runs under the shim. Never
        raises: a failure here is counted and fails the scan, not the test."""
        try:
            return self._spawned(bound)
        except Exception as e:  # noqa: BLE001
            with self.lock:
                self.watch_errors.append(f"{self.current_test}: {type(e).__name__}: {e}")
            return None

    def _spawned(self, bound):
        args = bound.get("args")
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in argv]
        env = bound.get("env")
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in (os.environ if env is None else env).items()}
        cwd = os.fsdecode(bound.get("cwd") or os.getcwd())
        wrapper = bool(argv) and os.path.basename(argv[0]) == "awf-shim-run"
        preload = [p for p in re.split(r"[\s:]+", env.get("LD_PRELOAD", "")) if p]
        if not wrapper and not any(os.path.basename(p).startswith("libawfshim") for p in preload):
            return None
        trace = env.get("AWF_SHIM_TRACE") or self._config_trace(env.get("AWF_SHIM_CONFIG"), cwd)
        if wrapper and "--trace" in argv[:-1]:
            trace = argv[argv.index("--trace") + 1]
        traces = []
        if trace and trace != "stderr":  # "stderr": the trace is in the stderr scanned below
            path = trace if os.path.isabs(trace) else os.path.join(cwd, trace)
            traces.append(glob.escape(path).replace("%p", "*"))
        stderr, mode = bound.get("stderr"), ""
        if stderr == subprocess.STDOUT:
            stderr, mode = bound.get("stdout"), "stdout-"
        stderr_file = None
        if stderr == subprocess.PIPE:
            mode += "pipe"
        elif stderr == subprocess.DEVNULL:
            mode += "discarded"
        elif stderr is None:
            mode += "inherited"  # the runner's stderr, which StderrTee keeps
        else:
            fd = stderr if isinstance(stderr, int) else stderr.fileno()
            target = os.readlink(f"/proc/self/fd/{fd}")
            stderr_file, mode = (target, mode + "file") if os.path.isfile(target) else (None, mode + "unreadable")
        with self.lock:
            self.spawn_count += 1
            proc = Proc(self.spawn_count, self.current_test, argv, cwd, traces, stderr_file, mode)
            self.procs.append(proc)
            where = f"process #{proc.n} ({proc.exe}) in {proc.test}"
            found = []
            for name, value in env.items():
                if _SECRET_VAR.search(name) and len(value) >= MIN_SECRET and not value.startswith("/"):
                    found.append((value, f"variable {name} of {where}"))
                if name in _PROXY_VARS or name in ("GITHUB_SERVER_URL", "GH_HOST", "COPILOT_GH_HOST"):
                    found += secrets_in_text(value, f"{name} of {where}")
            for i, a in enumerate(argv):
                found += secrets_in_text(a, f"argv[{i}] of {where}")
            delivered = set()
            for value, label in found:
                hits = {s for s in harness.SENTINELS if s in value}
                if hits or harness.SENTINEL_MARK in value:
                    delivered |= hits
                elif len(value) >= MIN_SECRET:
                    self.add_secret(value, label)
            proc.delivered = delivered
            for sentinel in delivered:
                self.deliveries[sentinel] = self.deliveries.get(sentinel, 0) + 1
        return proc

    @staticmethod
    def _config_trace(path, cwd):
        if not path:
            return None
        try:
            with open(path if os.path.isabs(path) else os.path.join(cwd, path)) as f:
                value = json.load(f).get("trace")
            return value if isinstance(value, str) else None
        except (OSError, ValueError, AttributeError):
            return None

    def output(self, proc, stdout, stderr):
        """What communicate() returned for a shimmed process."""
        text = stdout if proc.stderr_mode == "stdout-pipe" else stderr
        if proc.stderr_mode not in ("pipe", "stdout-pipe"):
            return
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        with self.lock:
            path = os.path.join(self.dir, "stderr", f"{proc.n:05d}-{proc.exe}.txt")
            with open(path, "ab") as f:
                f.write(text or b"")
            if not any(o[0] == path for o in self.outputs):
                self.outputs.append((path, f"stderr of {proc.origin()}", True))

    def exited(self, proc):
        """A shimmed process is gone: keep copies of its trace files and of a stderr file."""
        with self.lock:
            if proc.exited:
                return
            proc.exited = True
            self._keep(proc)

    def _keep(self, proc):
        for pattern in proc.traces:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                    if not stat.S_ISREG(st.st_mode):
                        continue  # a FIFO or device the shim refused to write: nothing to keep
                    key = (path, st.st_dev, st.st_ino)
                    if key not in self.snapshots:
                        n = len(self.snapshots) + 1
                        copy = os.path.join(self.dir, "traces", f"{n:05d}-{os.path.basename(path)}")
                        self.snapshots[key] = (copy, f"trace {path} of {proc.origin()}")
                    shutil.copyfile(path, self.snapshots[key][0])
                    proc.kept.add(path)
                except OSError:
                    pass  # gone already: nothing to keep
        if proc.stderr_file:
            copy = os.path.join(self.dir, "stderr", f"{proc.n:05d}-{proc.exe}.file.txt")
            try:
                shutil.copyfile(proc.stderr_file, copy)
                if not any(o[0] == copy for o in self.outputs):
                    self.outputs.append((copy, f"stderr file {proc.stderr_file} of {proc.origin()}", True))
            except OSError:
                pass

    def discard(self, proc):
        """A process that never started."""
        with self.lock:
            if proc in self.procs:
                self.procs.remove(proc)

    def add_output_file(self, path, origin):
        with self.lock:
            self.outputs.append((path, origin, False))

    # -- the verdict --------------------------------------------------------------------------
    def scan(self):
        with self.lock:
            for proc in self.procs:  # never waited for: keep what is still there
                if not proc.exited:
                    self._keep(proc)
            secrets = list(self.secrets.values())
            report = Report(self)
            for copy, origin in self.snapshots.values():
                hits, lines = scan_file(copy, secrets, origin)
                report.hits += hits
                report.trace_files += 1
                report.trace_lines += lines
                report.nonempty_traces += lines > 0
            for path, origin, of_process in self.outputs:
                if not os.path.exists(path):
                    continue
                hits, lines = scan_file(path, secrets, origin)
                report.hits += hits
                report.stderr_captures += 1
                report.process_stderr_captures += of_process
                report.stderr_lines += lines
            with open(os.path.join(self.dir, "index.json"), "w") as f:
                json.dump({"traces": [{"copy": c, "origin": o} for c, o in self.snapshots.values()],
                           "stderr": [{"copy": c, "origin": o} for c, o, _ in self.outputs],
                           "secrets": [{"label": x.label, "value": mask(x.value)} for x in secrets],
                           "processes": [{"n": p.n, "test": p.test, "exe": p.exe, "pid": p.pid,
                                          "trace": p.traces, "trace_files": sorted(p.kept),
                                          "stderr": p.stderr_mode} for p in self.procs]}, f, indent=1)
            return report


class Report:
    def __init__(self, registry):
        self.registry = registry
        self.hits = []
        self.trace_files = self.trace_lines = self.nonempty_traces = 0
        self.stderr_captures = self.process_stderr_captures = self.stderr_lines = 0

    def summary(self):
        r = self.registry
        modes = {}
        for p in r.procs:
            modes[p.stderr_mode] = modes.get(p.stderr_mode, 0) + 1
        per_module = {}
        for p in r.procs:
            per_module.setdefault(p.test.split(".")[0], []).append(p)
        lines = [f"{len(r.procs)} processes ran under the shim; scanned {self.trace_files} trace files "
                 f"({self.nonempty_traces} non-empty, {self.trace_lines} lines) and {self.stderr_captures} stderr "
                 f"captures ({self.stderr_lines} lines) for {len(r.secrets)} secrets "
                 f"({len(harness.SENTINELS)} sentinels, {len(r.secrets) - len(harness.SENTINELS) - 1} found in "
                 f"the tests' own arguments and environments), each plain, case-folded, %-encoded (also in part, "
                 f"hex in either case, up to {DECODE_ROUNDS} times), JSON-escaped and base64",
                 "stderr of shimmed processes: " + ", ".join(f"{k} {v}" for k, v in sorted(modes.items())),
                 "processes per module: " + ", ".join(f"{m} {len(ps)}" for m, ps in sorted(per_module.items())),
                 f"{len({p.test for p in r.procs})} tests started processes under the shim; "
                 f"{sum(bool(p.traces) for p in r.procs)} processes were given a trace file, "
                 f"{sum(bool(p.kept) for p in r.procs)} of them wrote one (the others never loaded the engine)",
                 "secrets found in the tests' own arguments and environments: " + (", ".join(
                     f"{x.label} [{mask(x.value)}]" for v, x in r.secrets.items()
                     if v not in harness.SENTINELS and v != harness.SENTINEL_MARK) or "none"),
                 "sentinels handed to shimmed processes: " + ", ".join(
                     f"{harness.SENTINELS[s]} ×{r.deliveries.get(s, 0)}" for s in harness.SENTINELS),
                 f"copies in {r.dir} (kept when the scan fails, or with AWF_SECRETS_SCAN_KEEP=1)"]
        return "\n".join(lines)

    def problems(self, full_run):
        """Why this scan cannot be trusted to mean anything (empty when it can)."""
        r, out = self.registry, []
        if not r.procs:
            return ["no process ran under the shim: nothing was scanned"]
        if self.nonempty_traces == 0 or self.trace_lines == 0:
            out.append("no trace line was scanned")
        if self.process_stderr_captures == 0:
            out.append("no stderr of a process under the shim was captured")
        if r.watch_errors:
            out.append(f"{len(r.watch_errors)} process(es) could not be looked at: " + "; ".join(r.watch_errors[:5]))
        if full_run:  # every kind of secret reached a process whose trace was then scanned
            for s, label in harness.SENTINELS.items():
                if not any(s in p.delivered and p.kept for p in r.procs):
                    out.append(f"{label} never reached a process under the shim that wrote a trace")
        return out


# ---------------------------------------------------------------------------------------------
# Installation

class ShimAwarePopen(_ORIGINAL_POPEN):
    def __init__(self, *args, **kwargs):
        self._awf = None
        registry, proc = _ACTIVE, None
        if registry is not None:
            try:
                bound = _POPEN_SIGNATURE.bind(self, *args, **kwargs)
                bound.apply_defaults()
            except TypeError:
                bound = None  # Popen itself says what is wrong
            if bound is not None:
                proc = registry.spawned(bound.arguments)
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            if proc is not None:
                registry.discard(proc)
            raise
        if proc is not None:
            proc.pid = self.pid
            self._awf = (registry, proc)

    def communicate(self, input=None, timeout=None):
        try:
            out, err = super().communicate(input, timeout)
        except subprocess.TimeoutExpired as e:
            if self._awf:
                self._awf[0].output(self._awf[1], e.output, e.stderr)
            raise
        if self._awf:
            self._awf[0].output(self._awf[1], out, err)
        return out, err

    def wait(self, timeout=None):
        rc = super().wait(timeout)
        if self._awf:
            self._awf[0].exited(self._awf[1])
        return rc

    def poll(self):
        rc = super().poll()
        if rc is not None and self._awf:
            self._awf[0].exited(self._awf[1])
        return rc


def activate(registry):
    """Make `registry` the one processes report to; returns the previous one."""
    global _ACTIVE
    with _ACTIVE_LOCK:
        previous, _ACTIVE = _ACTIVE, registry
    subprocess.Popen = ShimAwarePopen
    return previous


class StderrTee:
    """The runner's fd 2 becomes a pipe whose bytes go both to the real stderr and to a file, so
    that what a child writes to an inherited stderr is scanned too."""

    def __init__(self, path):
        self.path = path
        self.saved = os.dup(2)
        r, w = os.pipe()
        sys.stderr.flush()
        os.dup2(w, 2)
        os.close(w)
        self.thread = threading.Thread(target=self._pump, args=(r,), daemon=True)
        self.thread.start()

    def _pump(self, r):
        with open(self.path, "ab", buffering=0) as log:
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                os.write(self.saved, chunk)
                log.write(chunk)
        os.close(r)

    def stop(self, timeout=10):
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # our end of the pipe closes; EOF once no child holds it
        self.thread.join(timeout)


_TEE = None


def install():
    """Called by run.py before any test: one registry for the whole run."""
    global RUN, _TEE
    RUN = Registry(tempfile.mkdtemp(prefix="awfshim-secrets-", dir="/tmp"))
    activate(RUN)
    runner_stderr = os.path.join(RUN.dir, "stderr", "00000-runner.txt")
    _TEE = StderrTee(runner_stderr)
    RUN.add_output_file(runner_stderr, "the runner's stderr (children that inherited it)")
    return RUN


def set_current_test(test_id):
    if RUN is not None:
        RUN.current_test = test_id


# ---------------------------------------------------------------------------------------------
# Tests

class ScannerSelfTest(harness.TempDirTest):
    """The negative control: secrets planted where a leak would put them are found."""

    def planted(self, lines):
        path = self.path("planted.jsonl")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    def test_scanner_finds_a_planted_sentinel_plain_percent_encoded_and_base64(self):
        token, password, user = harness.SENTINEL_TOKEN, harness.SENTINEL_PROXY_PASSWORD, harness.SENTINEL_PROXY_USER
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        lines = [
            '{"ev":"init","settings":{"proxy":"http://awf-agent:***@127.0.0.1:3128"}}',    # 1 clean
            f'{{"ev":"http","path":"/x?access_token={token}"}}',                          # 2 plain
            f'{{"ev":"error","message":"{urllib.parse.quote(password, safe="")}"}}',    # 3 %-encoded
            "".join(f"%{b:02X}" for b in token.encode()),                                # 4 every byte
            f"Proxy-Authorization: Basic {basic}",                                        # 5 base64
            base64.b64encode(b"x" + token.encode()).decode(),                            # 6 base64, offset 1
            base64.urlsafe_b64encode(b"xy" + password.encode()).decode(),                # 7 url-safe, offset 2
            f"awf-shim: bad host '{harness.SENTINEL_MARK.lower()}x.example'",           # 8 case-folded part
            "nothing to see here: ghp_*** and github_pat_***",                           # 9 clean
        ]
        secrets = [Secret(v, label) for v, label in harness.SENTINELS.items()] + \
                  [Secret(harness.SENTINEL_MARK, "mark")]
        hits, count = scan_file(self.planted(lines), secrets)
        self.assertEqual(count, 9)
        self.assertEqual(sorted({h.line for h in hits}), [2, 3, 4, 5, 6, 7, 8], "\n".join(map(str, hits)))
        forms = {(h.line, h.form) for h in hits}
        for line, form in [(2, "plain"), (3, "encoded"), (4, "encoded"), (5, "base64"), (6, "base64"),
                           (7, "base64"), (8, "plain")]:
            self.assertIn((line, form), forms)
        self.assertTrue(all(str(h).startswith(f"{h.where}:{h.line}: ") for h in hits))
        self.assertFalse(any(h.secret.value in str(h) for h in hits), "a report never shows a secret")

    def test_scanner_finds_a_sentinel_encoded_in_part_in_either_case_or_more_than_once(self):
        token, header, password = harness.SENTINEL_TOKEN, harness.SENTINEL_HEADER_TOKEN, harness.SENTINEL_PROXY_PASSWORD

        def some(value, every, upper=True):  # every `every`-th byte percent-encoded
            return "".join((f"%{b:02X}" if upper else f"%{b:02x}") if i % every == 0 else chr(b)
                           for i, b in enumerate(value.encode()))

        twice = urllib.parse.quote(urllib.parse.quote(password, safe=""), safe="")
        lines = [
            '{"ev":"http","path":"/search?q=is%3Aopen&next=%2Fcb%3Fcode%3D***%26page%3D2"}',  # 1 clean
            f'{{"ev":"http","path":"/x?q=%67{token[1:]}"}}',                                 # 2 first byte
            f'{{"ev":"http","path":"/x?q={token.replace("_", "%5f")}"}}',                   # 3 '_', lower-case hex
            f'{{"ev":"http","path":"/x?q={some(header, 3)}"}}',                             # 4 every third byte
            f'{{"ev":"http","path":"/x?q={some(header, 2, upper=False)}"}}',                # 5 every other, lower
            f'{{"ev":"http","path":"/login?next=%2Fcb%3Faccess_token%3D{some(token, 5)}"}}',  # 6 in a redirect
            f'{{"ev":"error","message":"{twice}"}}',                                        # 7 encoded twice
            f'{{"ev":"http","path":"/x?q={some(urllib.parse.quote(token, safe=""), 4)}"}}',  # 8 twice, in part
            f'{{"ev":"http","path":"/x?q=%2567{token[1:].upper()}"}}',                       # 9 twice, case-folded
        ]
        secrets = [Secret(v, label) for v, label in harness.SENTINELS.items()]
        hits, count = scan_file(self.planted(lines), secrets)
        self.assertEqual(count, len(lines))
        self.assertEqual({(h.line, h.form) for h in hits}, {(n, "decoded") for n in range(2, len(lines) + 1)},
                         "\n".join(map(str, hits)))
        self.assertFalse(any(h.secret.value in str(h) for h in hits), "a report never shows a secret")

    def test_scanner_finds_a_discovered_secret_and_ignores_clean_text(self):
        argv = ["curl", "-H", "Authorization: token s3cr3t-value-1", "https://u:hunter22@h/x?api_key=k3y-value-2&a=b",
                "https://h/x?X-Api%2DKey=k3y-value-3&next=%2Fcb%3F%2561ccess_token%253Dt0ken-value-4%26p%3D1"]
        found = dict((v, l) for a in argv for v, l in secrets_in_text(a, "argv"))
        self.assertEqual(set(found), {"s3cr3t-value-1", "hunter22", "u:hunter22", "k3y-value-2", "k3y-value-3",
                                      "t0ken-value-4"})
        secrets = [Secret(v, l) for v, l in found.items()]
        clean = self.planted(['{"ev":"tunnel","proxy":"http://u:***@h","path":"/x?api_key=***&a=b"}'])
        self.assertEqual(scan_file(clean, secrets)[0], [])
        leak = self.planted(["ok", "Authorization: Basic " + base64.b64encode(b"u:hunter22").decode()])
        self.assertEqual([h.line for h in scan_file(leak, secrets)[0]], [2], "one hit per line")

    def test_the_whole_chain_catches_a_shimmed_process_that_leaks(self):
        """A process under the shim writes a sentinel to its stderr and a base64 one into its
        trace; its scratch directory is gone before the scan, as tests leave it."""
        registry = Registry(self.path("run"))
        previous = activate(registry)
        try:
            work = self.path("work")
            os.mkdir(work)
            trace = os.path.join(work, "trace-%p.jsonl")
            code = ("import base64, os, socket, sys; socket.getaddrinfo('localhost', 80);"
                    "sys.stderr.write('leak: ' + os.environ['GITHUB_TOKEN'] + '\\n');"
                    "open(os.environ['AWF_SHIM_TRACE'].replace('%p', str(os.getpid())), 'a').write("
                    "'{\"leak\":\"' + base64.b64encode(b'awf-agent:' + sys.argv[1].encode()).decode() + '\"}\\n')")
            env = harness.shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=trace,
                                   HTTPS_PROXY=harness.proxy_url("127.0.0.1:3128"))
            r = harness.run([harness.PYTHON, "-c", code, harness.SENTINEL_PROXY_PASSWORD], env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            clean = harness.run([harness.PYTHON, "-c", "import socket; socket.getaddrinfo('localhost', 80)"],
                                env=harness.shim_env(AWF_SHIM="1", AWF_SHIM_TRACE=os.path.join(work, "clean.jsonl"),
                                                     HTTPS_PROXY="http://127.0.0.1:3128"))
            self.assertEqual(clean.returncode, 0, clean.stderr)
            unshimmed = harness.run(["sh", "-c", "echo $0 >&2", harness.SENTINEL_TOKEN])
            self.assertEqual(unshimmed.returncode, 0)
        finally:
            activate(previous)
        shutil.rmtree(work)
        report = registry.scan()
        self.assertEqual(len(registry.procs), 2, "the unshimmed process is not counted")
        self.assertEqual((report.trace_files, report.stderr_captures), (2, 2))
        by_place = {(os.path.basename(os.path.dirname(h.where)), h.line, h.form) for h in report.hits}
        self.assertIn(("stderr", 1, "plain"), by_place, "\n".join(map(str, report.hits)))
        self.assertIn(("traces", 3, "base64"), by_place, "\n".join(map(str, report.hits)))  # init, dns, leak
        self.assertEqual(len({(h.where, h.line) for h in report.hits}), 2, "\n".join(map(str, report.hits)))
        self.assertEqual(report.problems(full_run=False), [])
        # A full run must also have handed every sentinel to a traced process: this one did not.
        missing = report.problems(full_run=True)
        self.assertIn("sentinel Authorization header token never reached a process under the shim that wrote a trace",
                      missing)
        self.assertFalse([m for m in missing if "GITHUB_TOKEN" in m or "proxy password" in m], missing)

    def test_a_scan_of_nothing_fails(self):
        registry = Registry(self.path("empty"))
        report = registry.scan()
        self.assertEqual(report.hits, [])
        self.assertTrue(report.problems(full_run=False))


class SecretsScan(unittest.TestCase):
    """The verdict on the whole run; run.py runs it after every other test."""

    junit_output = ""

    def test_no_sentinel_in_any_trace_or_stderr(self):
        if RUN is None:
            self.skipTest("only meaningful under run.py, which watches every process")
        if _TEE is not None:
            _TEE.stop()
        report = RUN.scan()
        summary = report.summary()
        SecretsScan.junit_output = summary
        print("\n" + summary, flush=True)
        problems = report.problems(FULL_RUN)
        keep = report.hits or problems or os.environ.get("AWF_SECRETS_SCAN_KEEP")
        if not keep:
            self.addCleanup(shutil.rmtree, RUN.dir, ignore_errors=True)
        if not RUN.procs and not FULL_RUN:
            shutil.rmtree(RUN.dir, ignore_errors=True)
            self.skipTest("no test selected by this filtered run started a process under the shim")
        message = []
        if report.hits:
            shown = report.hits[:50]
            message.append(f"{len(report.hits)} secret(s) found:\n" + "\n".join(map(str, shown)) +
                           ("\n…" if len(report.hits) > len(shown) else ""))
        if problems:
            message.append("the scan saw too little to mean anything:\n" + "\n".join(problems))
        if message:
            self.fail("\n".join(message) + "\n" + summary)
