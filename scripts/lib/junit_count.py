"""Adds up the suites of one scripts/test run and prints its verdict.

Usage: junit_count.py SUITE...   where SUITE is KIND:NAME:STATUS:REPORT
  KIND    "run" (a suite of distinct tests) or "rerun" (the same tests again under a sanitizer)
  NAME    what the suite is called in messages
  STATUS  the exit status of the command that ran it
  REPORT  its JUnit file, which that command wrote in this run (scripts/test deletes it before)

A suite counts as one failure, besides its test cases, when its report is missing or unreadable
(a sanitizer abort writes none), when it reports no test at all, or when its command failed
although no test case in the report did. The last line is the distinct tests —
"N passed, N failed[, N skipped]" — and the line before it the reruns. Exits 1 on any
failure or when nothing ran."""
import sys
import xml.etree.ElementTree as ET


def outcome(case):
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    return "skipped" if case.find("skipped") is not None else "passed"


def count(suites):
    totals = {"run": {"passed": 0, "failed": 0, "skipped": 0}, "rerun": {"passed": 0, "failed": 0, "skipped": 0}}
    for spec in suites:
        kind, name, status, path = spec.split(":", 3)
        tally = totals[kind]
        try:
            cases = list(ET.parse(path).getroot().iter("testcase"))
        except (OSError, ET.ParseError) as e:
            print(f"junit_count: {name}: no report from this run ({e}); exit status {status}", file=sys.stderr)
            tally["failed"] += 1
            continue
        outcomes = [outcome(c) for c in cases]
        for o in outcomes:
            tally[o] += 1
        if not cases:
            print(f"junit_count: {name}: its report holds no test", file=sys.stderr)
            tally["failed"] += 1
        elif status != "0" and "failed" not in outcomes:
            print(f"junit_count: {name}: exited {status} with no failing test in its report", file=sys.stderr)
            tally["failed"] += 1
    return totals


def line(t):
    text = f"{t['passed']} passed, {t['failed']} failed"
    return text + (f", {t['skipped']} skipped" if t["skipped"] else "")


def main(argv):
    totals = count(argv)
    run, rerun = totals["run"], totals["rerun"]
    if any(rerun.values()):
        print("reruns (sanitizers, packager build, aarch64 under qemu-user): " + line(rerun))
    print(line(run))
    return 1 if run["failed"] or rerun["failed"] or run["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
