"""The trace sink under the conditions an operator's machine has: a slow pipe, a full disk, many
writers, a FIFO or a symbolic link at the path, stdout closed at start. It must never block the
application beyond a small bound, never kill it, never tear or glue lines, and never lose an event
without saying so (a `trace_dropped` event counts what it had to drop)."""
import json
import os
import re
import select
import subprocess
import time
import unittest

import net
from harness import HANG_GUARD, PROGRAMS, PYTHON, TempDirTest, read_trace, run, runtime, shim_env

LOOKUPS = os.path.join(PROGRAMS, "lookups")


def env(**extra):
    return shim_env(AWF_SHIM="1", AWF_SHIM_PROXY="http://127.0.0.1:9", GH_HOST=net.TENANT, **extra)


def slow_read(stream, chunk=2048, pause=0.004, start_after=0.0):
    """Reads a pipe to its end a little at a time, as a slow consumer of the application's stderr."""
    time.sleep(start_after)  # the writer meets a full pipe first
    data = bytearray()
    while True:
        select.select([stream], [], [])
        part = os.read(stream.fileno(), chunk)
        if not part:
            return bytes(data)
        data += part
        time.sleep(pause)


def parse_lines(data):
    """Every line of `data` parsed; a line that is not JSON fails (the caller's assert shows it)."""
    return [json.loads(line) for line in data.decode().splitlines() if line]


class SlowPipe(TempDirTest):
    def test_node_with_a_non_blocking_stderr_pipe_loses_nothing(self):
        # Node makes stderr non-blocking when it is a pipe: writes see EAGAIN whenever the reader
        # lags. 2,000 lookups of a routed name, 2,000 dns events, each whole.
        # (Node makes a pipe non-blocking when the script first touches process.stderr.)
        code = ("void process.stderr; const dns = require('dns'); let left = 2000;"
                "const next = () => left-- > 0 ? dns.lookup(process.argv[1], next) : null; next();")
        p = subprocess.Popen([runtime("node-24"), "-e", code, net.API], env=env(AWF_SHIM_TRACE="stderr"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        data = slow_read(p.stderr, chunk=1024, pause=0.005, start_after=0.5)
        self.assertEqual(p.wait(HANG_GUARD), 0)
        events = parse_lines(data)
        self.assertEqual(sum(e["ev"] == "dns" for e in events), 2000, [e["ev"] for e in events][-5:])
        self.assertEqual([e for e in events if e["ev"] == "trace_dropped"], [])

    def test_long_lines_from_many_processes_never_interleave(self):
        # 40 processes, each with an init event of ~27 KB (a long route list), into one slow pipe:
        # past PIPE_BUF a write is not atomic, so the writers must take turns.
        routes = ",".join(f"host-{i:05d}.example" for i in range(1400))
        r, w = os.pipe()
        procs = [subprocess.Popen([LOOKUPS, net.API, "1"], env=env(AWF_SHIM_TRACE="stderr", AWF_SHIM_ROUTE=routes),
                                  stdout=subprocess.DEVNULL, stderr=w) for _ in range(40)]
        os.close(w)
        with os.fdopen(r, "rb") as reader:
            data = slow_read(reader, chunk=8192, pause=0.001)
        self.assertEqual([p.wait(HANG_GUARD) for p in procs], [0] * 40)
        events = parse_lines(data)  # every line whole
        inits = [e for e in events if e["ev"] == "init"]
        self.assertEqual(len(inits), 40, [e for e in events if e["ev"] == "trace_dropped"])
        self.assertGreater(min(len(json.dumps(e)) for e in inits), 4096 * 4)

    def test_a_reader_that_goes_away_kills_nothing(self):
        r, w = os.pipe()
        p = subprocess.Popen([LOOKUPS, net.API, "3000"], env=env(AWF_SHIM_TRACE="stderr"),
                             stdout=subprocess.DEVNULL, stderr=w)
        os.close(w)
        os.read(r, 100)
        os.close(r)  # the reader goes: every later write to the pipe is EPIPE
        self.assertEqual(p.wait(HANG_GUARD), 0)  # not 141 / -SIGPIPE


class FullDisk(TempDirTest):
    def test_a_full_small_tmpfs_cuts_no_line_and_says_what_it_dropped(self):
        # A 64 KiB tmpfs in this test's private mount namespace: it fills up, then space comes back.
        disk = self.path("disk")
        os.mkdir(disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", disk])
        filler = os.path.join(disk, "filler")
        trace = os.path.join(disk, "trace.jsonl")
        code = ("import os, socket, sys\n"
                "for i in range(1500):\n"
                "    socket.getaddrinfo(sys.argv[1], 443)\n"
                "    if i == 900: os.unlink(sys.argv[2])\n")
        with open(filler, "wb") as f:
            f.write(b"x" * 40 * 1024)
        r = run([PYTHON, "-c", code, net.API, filler], env=env(AWF_SHIM_TRACE=trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        events = read_trace(trace)  # fails on any line that is not JSON (cut or glued)
        dns = sum(e["ev"] == "dns" for e in events)
        dropped = sum(e["dropped"] for e in events if e["ev"] == "trace_dropped")
        self.assertGreater(dropped, 0)
        # The disk fills up again after the filler's space is used: what is lost then is said on
        # stderr at exit, the trace having no room for it.
        at_exit = re.search(r"^awf-shim: the trace lost (\d+) events \(No space left on device\)$", r.stderr, re.M)
        self.assertEqual(dns + dropped + (int(at_exit.group(1)) if at_exit else 0), 1500, r.stderr)


class TracePath(TempDirTest):
    def lookup(self, trace, **extra):
        return run([PYTHON, "-c", f"import socket; socket.getaddrinfo('{net.API}', 443); print('app ran')"],
                   env=env(AWF_SHIM_TRACE=trace, **extra))

    def test_a_fifo_is_refused_without_blocking(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        r = self.lookup(fifo)  # nobody reads the FIFO: an open without O_NONBLOCK would hang here
        self.assertEqual((r.returncode, r.stdout), (0, "app ran\n"), r.stderr)
        self.assertIn("not a regular file", r.stderr)

    def test_a_symbolic_link_anywhere_in_the_path_is_refused(self):
        real = self.path("real")
        os.mkdir(real)
        os.symlink(real, self.path("link"))
        r = self.lookup(self.path("link/trace.jsonl"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("'link' is a symbolic link", r.stderr)
        self.assertEqual(os.listdir(real), [])

    def test_an_existing_file_is_made_0600(self):
        trace = self.path("trace.jsonl")
        open(trace, "w").close()
        os.chmod(trace, 0o644)
        self.assertEqual(self.lookup(trace).returncode, 0)
        self.assertEqual(os.stat(trace).st_mode & 0o777, 0o600)
        self.assertTrue(read_trace(trace))

    def test_a_fork_child_writes_its_own_percent_p_file(self):
        trace = self.path("trace-%p.jsonl")
        code = (f"import os, socket; socket.getaddrinfo('{net.API}', 443)\n"
                "pid = os.fork()\n"
                f"if pid == 0:\n    socket.getaddrinfo('{net.API}', 443); os._exit(0)\n"
                "os.waitpid(pid, 0); print(pid)\n")
        r = run([PYTHON, "-c", code], env=env(AWF_SHIM_TRACE=trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        child = int(r.stdout)
        files = sorted(os.listdir(self.dir))
        self.assertEqual(len(files), 2, files)
        by_pid = {int(f.split("-")[1].split(".")[0]): read_trace(self.path(f)) for f in files}
        self.assertEqual([e["pid"] for e in by_pid[child]], [child])  # its one dns event, in its own file
        parent = next(p for p in by_pid if p != child)
        self.assertEqual({e["pid"] for e in by_pid[parent]}, {parent})

    def test_stdout_closed_at_start_keeps_the_applications_output_out_of_the_trace(self):
        trace = self.path("trace.jsonl")
        code = (f"import os, socket; socket.getaddrinfo('{net.API}', 443)\n"
                "try:\n    os.write(1, b'application output\\n')\nexcept OSError:\n    pass\n")
        r = run(["sh", "-c", 'exec >&-; exec "$0" -c "$1"', PYTHON, code], env=env(AWF_SHIM_TRACE=trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"application output", open(trace, "rb").read())
        self.assertTrue(any(e["ev"] == "dns" for e in read_trace(trace)))


if __name__ == "__main__":
    unittest.main()
