"""Runs the integration and end-to-end tests (every test_*.py here and in ../e2e) and writes a
JUnit report. Every process started under the shim is watched (secrets_scan.py): after the last
test, secrets_scan.SecretsScan searches all their traces and stderr for every fake secret they
were given; secrets_scan.ScannerSelfTest, run first, proves that search finds planted ones.

trace_recount.TraceRecount, run after the other tests and before the secrets scan (which deletes
the copies of the traces), checks awf-shim-trace's summary of every kept trace against
tests/trace_tool/recount.py.

Usage: run.py [--junit FILE] [-k PATTERN]... [modules...]
Meant to run inside a private network namespace (scripts/test arranges it)."""
import argparse
import os
import re
import sys
import time
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
sys.path.insert(0, HERE)
sys.path.insert(0, E2E)

import secrets_scan  # noqa: E402
import trace_recount  # noqa: E402


class Recorder(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cases = []
        self._start = 0.0

    def startTest(self, test):
        self._start = time.monotonic()
        secrets_scan.set_current_test(test.id())
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        secrets_scan.set_current_test("(between tests)")

    def _record(self, test, outcome, detail=""):
        output = getattr(test, "junit_output", "")
        self.cases.append((test.id(), outcome, detail, time.monotonic() - self._start, output))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "failed", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        # A failing subTest fails its test, which then gets no addSuccess: record the failure here,
        # or the report would hold nothing for that test at all.
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(subtest, "failed", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed", "unexpected success")


# scripts/test --sanitize: AWF_TEST_SANITIZER names the sanitizer the front, the engine and the
# test programs are built with, and AWF_TEST_SANITIZER_LOGS the directory its reports go to
# (*SAN_OPTIONS log_path). SanitizerReports, run after every other test and before the secrets
# scan, fails when any process wrote a report.
SANITIZER = os.environ.get("AWF_TEST_SANITIZER", "")
SANITIZER_LOGS = os.environ.get("AWF_TEST_SANITIZER_LOGS", "")
# Tests whose subject a sanitizer build changes, skipped under it with the reason (test id prefix).
_FORK_CHILD_MALLOC = ("hangs now and then under GCC 12's sanitizer runtimes: the forked child's first connect() "
                      "allocates (the engine's TLS block, via __tls_get_addr -> malloc), and the sanitizer's "
                      "allocator, unlike glibc's, is not reset at fork, so a lock a parent thread held at the fork "
                      "is never released in the child (seen in gdb: the child waits in "
                      "SizeClassAllocator64::GetFromAllocator)")
SANITIZER_SKIPS = {
    "address": {
        "test_front.Loading.test_concurrent_first_use_and_fork_neither_deadlock_nor_crash": _FORK_CHILD_MALLOC,
        "test_front.Exports.test_front_needs_libc_alone":
            "the ASan+UBSan front needs libasan and libubsan besides libc",
        "test_front.InertMode.test_no_extra_syscalls_beyond_loading_the_front":
            "counts the syscalls of loading the front alone; the preloaded ASan runtime adds its own "
            "(and it runs curl, which cannot run under ASan: see harness.SANITIZER_INCOMPATIBLE)",
        "test_front.RunWrapper.test_switches_the_shim_on_and_appends_to_an_existing_preload":
            "awf-shim-run appends the ASan-built front behind another library, so the ASan runtime "
            "cannot come first in the process (ASan refuses to start); the test checks that order exactly",
        "test_tap.Tap.test_large_bodies_are_counted_with_bounded_memory":
            "its python3 runs curl (inheriting the ASan preload), which cannot run under ASan: see "
            "harness.SANITIZER_INCOMPATIBLE; it also bounds peak RSS, which ASan's shadow and quarantine inflate",
        "test_arm64.":
            "runs arm64 programs under qemu-user against the aarch64 build; the sanitizer build is x86-64",
        "test_stress.ThreadStorm.":
            "bounds resident memory after the run; under ASan freed memory stays in ASan's quarantine, so the "
            "bound measures ASan, not the shim (the TSan run still runs these tests, for races)",
        "test_stress.EpollThousand.":
            "bounds resident memory after the run; under ASan freed memory stays in ASan's quarantine, so the "
            "bound measures ASan, not the shim (the TSan run still runs this test, for races)",
    },
    "thread": {
        "test_front.Loading.test_concurrent_first_use_and_fork_neither_deadlock_nor_crash": _FORK_CHILD_MALLOC,
    },
}
# The lines that make a sanitizer log a report (a log may also hold mere warnings).
_REPORT_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                 "ERROR: ThreadSanitizer", "Sanitizer:DEADLYSIGNAL", "SUMMARY: ")
_UBSAN_LINE = re.compile(r"^\S+:\d+:\d+: runtime error: ")


def skip_for_sanitizer(suite):
    """Replaces each test of SANITIZER_SKIPS[SANITIZER] in `suite` by a skip with its reason."""
    skips = SANITIZER_SKIPS.get(SANITIZER, {})
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            skip_for_sanitizer(test)
            continue
        reason = next((r for prefix, r in skips.items() if test.id().startswith(prefix)), None)
        if reason:
            setattr(test, test._testMethodName,
                    unittest.skip(f"under {SANITIZER} sanitizer: {reason}")(lambda: None))


class SanitizerReports(unittest.TestCase):
    """The verdict on the sanitizer reports of the whole run (scripts/test --sanitize): every file
    in AWF_TEST_SANITIZER_LOGS, and the stderr of every process under the shim that the secrets
    scan kept (GCC's UBSan, linked next to ASan, ignores log_path and reports on stderr)."""

    junit_output = ""
    HEAD = 25  # lines of each report shown in the failure

    @staticmethod
    def _ubsan_in_stderr():
        found = []
        registry = secrets_scan.RUN
        if registry is None:
            return found
        with registry.lock:
            outputs = list(registry.outputs)
        for path, origin, _ in outputs:
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for i, line in enumerate(lines):
                if _UBSAN_LINE.match(line):
                    found.append((f"{origin} (line {i + 1} of {path})", "\n".join(lines[i:i + 40])))
                    break  # halt_on_error=1: one report per process
        return found

    def test_sanitizer_reports(self):
        if not SANITIZER_LOGS:
            self.skipTest("no sanitizer (scripts/test --sanitize sets AWF_TEST_SANITIZER_LOGS)")
        reports, notes = [], []
        for name in sorted(os.listdir(SANITIZER_LOGS)):
            path = os.path.join(SANITIZER_LOGS, name)
            with open(path, errors="replace") as f:
                text = f.read()
            # A sanitizer opens its log when it starts to write; an empty or cut short file is a
            # report that the process did not live to finish (it was exiting).
            # A report opens with a line of "="; a mere warning is one "==PID==WARNING: ..." line.
            is_note = bool(text.strip()) and "==========" not in text and not any(m in text for m in _REPORT_MARKS)
            if not text.strip():
                text = "(empty: the process ended before the sanitizer wrote its report)"
            (notes if is_note else reports).append((path, text))
        reports += self._ubsan_in_stderr()
        SanitizerReports.junit_output = "\n\n".join(f"== {p}\n{t}" for p, t in reports + notes)
        for path, text in notes:
            print(f"sanitizer log without a report (not a failure): {path}\n{text}", flush=True)
        if reports:
            shown = [f"== {p}\n" + "\n".join(t.splitlines()[:self.HEAD]) for p, t in reports]
            self.fail(f"{len(reports)} sanitizer report(s) (full text in system-out):\n\n" + "\n\n".join(shown))


def write_junit(path, cases):
    suite = ET.Element("testsuite", name="integration", tests=str(len(cases)),
                       failures=str(sum(c[1] == "failed" for c in cases)),
                       skipped=str(sum(c[1] == "skipped" for c in cases)))
    for name, outcome, detail, seconds, output in cases:
        cls, _, meth = name.rpartition(".")
        tc = ET.SubElement(suite, "testcase", classname=cls, name=meth, time=f"{seconds:.3f}")
        if outcome == "failed":
            ET.SubElement(tc, "failure", message=detail.splitlines()[-1] if detail else "").text = detail
        elif outcome == "skipped":
            ET.SubElement(tc, "skipped", message=detail)
        if output:
            ET.SubElement(tc, "system-out").text = output
    ET.ElementTree(suite).write(path, encoding="unicode")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--junit")
    ap.add_argument("-k", action="append", default=[])
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()
    secrets_scan.install()  # before any test starts a process
    # Under a sanitizer some tests are skipped (SANITIZER_SKIPS, harness.SANITIZER_INCOMPATIBLE), so
    # the scan cannot demand that every sentinel reached a traced process.
    secrets_scan.FULL_RUN = not args.k and not args.modules and not SANITIZER
    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = [f"*{k}*" for k in args.k]
    if args.modules:
        suite = unittest.TestSuite(loader.loadTestsFromName(m) for m in args.modules)
    else:
        suite = unittest.TestSuite([loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE),
                                    loader.discover(E2E, pattern="test_*.py", top_level_dir=E2E)])
    # Whatever the selection: the scanner's own check first, the recount of the kept traces and the
    # scan of the whole run last.
    skip_for_sanitizer(suite)
    scan = unittest.TestLoader()
    # Under a sanitizer, its verdict after every test, before the secrets scan (which drops the
    # stderr copies it reads).
    verdicts = [scan.loadTestsFromTestCase(SanitizerReports)] if SANITIZER_LOGS else []
    suite = unittest.TestSuite([scan.loadTestsFromTestCase(secrets_scan.ScannerSelfTest), suite, *verdicts,
                                scan.loadTestsFromTestCase(trace_recount.TraceRecount),
                                scan.loadTestsFromTestCase(secrets_scan.SecretsScan)])
    runner = unittest.TextTestRunner(resultclass=Recorder, verbosity=2, stream=sys.stdout)
    result = runner.run(suite)
    if args.junit:
        write_junit(args.junit, result.cases)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
