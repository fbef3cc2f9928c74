"""Runs the integration and end-to-end tests (every test_*.py here and in ../e2e) and writes a
JUnit report. Every process started under the shim is watched (secrets_scan.py): after the last
test, secrets_scan.SecretsScan searches all their traces and stderr for every fake secret they
were given; secrets_scan.ScannerSelfTest, run first, proves that search finds planted ones.

Usage: run.py [--junit FILE] [-k PATTERN]... [modules...]
Meant to run inside a private network namespace (scripts/test arranges it)."""
import argparse
import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
sys.path.insert(0, HERE)
sys.path.insert(0, E2E)

import secrets_scan  # noqa: E402


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

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed", "unexpected success")


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
    secrets_scan.FULL_RUN = not args.k and not args.modules
    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = [f"*{k}*" for k in args.k]
    if args.modules:
        suite = unittest.TestSuite(loader.loadTestsFromName(m) for m in args.modules)
    else:
        suite = unittest.TestSuite([loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE),
                                    loader.discover(E2E, pattern="test_*.py", top_level_dir=E2E)])
    # Whatever the selection: the scanner's own check first, the scan of the whole run last.
    scan = unittest.TestLoader()
    suite = unittest.TestSuite([scan.loadTestsFromTestCase(secrets_scan.ScannerSelfTest), suite,
                                scan.loadTestsFromTestCase(secrets_scan.SecretsScan)])
    runner = unittest.TextTestRunner(resultclass=Recorder, verbosity=2, stream=sys.stdout)
    result = runner.run(suite)
    if args.junit:
        write_junit(args.junit, result.cases)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
