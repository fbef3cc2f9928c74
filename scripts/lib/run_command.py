"""Runs one command README gives a user as a test case of scripts/test, and writes its JUnit report.

Usage: run_command.py --junit FILE --name NAME [--log FILE] [--expect REGEX]... [--timeout S] -- COMMAND...

The case passes when COMMAND exits 0 within the timeout and its output (stdout and stderr, kept
in --log) matches every --expect. On a failure the tail of the output is printed and goes into
the report. Exits with the command's status (1 for a missed --expect, 124 for the timeout)."""
import argparse
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--junit", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--log")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command after --")
    print(f"$ {' '.join(command)}", flush=True)
    start = time.monotonic()
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.timeout)
        output, status = proc.stdout.decode(errors="replace"), proc.returncode
    except subprocess.TimeoutExpired as e:
        output, status = (e.stdout or b"").decode(errors="replace"), 124
    seconds = time.monotonic() - start
    if args.log:
        with open(args.log, "w") as f:
            f.write(output)
    problem = None
    if status == 124 and seconds >= args.timeout:
        problem = f"did not finish in {args.timeout:.0f} s"
    elif status != 0:
        problem = f"exited {status}"
    else:
        missing = [p for p in args.expect if not re.search(p, output, re.M)]
        if missing:
            problem, status = f"its output lacks {', '.join(map(repr, missing))}", 1
    case = ET.Element("testcase", name=args.name, classname="commands", time=f"{seconds:.3f}")
    if problem:
        tail = "\n".join(output.splitlines()[-60:])
        print(tail)
        print(f"{args.name}: {problem}", flush=True)
        ET.SubElement(case, "failure", message=problem).text = tail
    else:
        print(f"{args.name}: ok ({seconds:.0f} s)", flush=True)
    suite = ET.Element("testsuite", name=args.name, tests="1", failures="1" if problem else "0")
    suite.append(case)
    ET.ElementTree(suite).write(args.junit, encoding="unicode")
    return status


if __name__ == "__main__":
    sys.exit(main())
