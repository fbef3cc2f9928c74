#!/usr/bin/env python3
"""Checks `awf-shim-trace summary --format markdown` (meson test trace_tool_markdown).

usage: check_markdown.py AWF_SHIM_TRACE GEN_TRACE

Over realistic traces (data/, merged and one by one, bad lines and all, and a 1 MiB trace of
gen_trace with more rows than a table shows):
  - its shape: the heading, the verdict, sections "#### TITLE" each with a table or a note, and
    no other line;
  - every table: a delimiter row ("---" or "---:" per column) and every row with the header's
    number of cells, split as GitHub splits them (on each '|' not after a backslash);
  - outside code spans, only the tool's own words: no character markdown or HTML acts on;
  - the same rows and cells (code spans read) as the human output, and its "… N more" notes.
Over data/hostile.jsonl ('|', backticks, <script>, newlines, markdown, HTML, @mentions in hosts,
paths, methods, executables and error texts): the same, and each hostile value comes out whole in
one code span, as the human output shows it (control characters as \\xNN).
Then cmark-gfm (GitHub's renderer; scripts/bootstrap installs it) renders each with raw HTML allowed and checks
that the HTML holds only the elements the tool means (no <script>, <img>, <a>, <em>…), that every
row has as many cells as its header, and that the hostile values are the text of <code> elements.
"""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mdsummary as md

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REALISTIC = [["success.jsonl", "denial.jsonl", "config.jsonl", "http.jsonl", "tap.jsonl", "ports.jsonl"],
             ["success.jsonl"], ["denial.jsonl"], ["config.jsonl"], ["http.jsonl"], ["tap.jsonl"], ["ports.jsonl"],
             ["garbage.jsonl", "truncated.jsonl", "schema.jsonl", "nonobject.jsonl"], ["empty.jsonl"]]
TITLES = ["Processes", "Hosts", "HTTP requests", "Errors", "Input"]
OWN_WORDS = re.compile(r"[A-Za-z0-9 .,:()×…-]*")  # what the tool writes outside code spans
HTML_TAGS = {"h3", "h4", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "code"}
failures = []


def fail(where, what):
    failures.append(f"{where}: {what}")


# A cross build's programs run through the cross file's test_wrapper (qemu-user; meson.build).
WRAPPER = [w for w in os.environ.get("AWF_SHIM_TEST_WRAPPER", "").split("\t") if w]


def run(tool, *args):
    r = subprocess.run([*WRAPPER, tool, *args], cwd=DATA, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"awf-shim-trace {' '.join(args)}: exit status {r.returncode}: {r.stderr}")
    return r.stdout


def clean(s):
    """As the tool's Clean: C0 controls, DEL and C1 controls as \\xNN."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 else c for c in s)


def human_sections(text):
    """The human output's tables: {title: rows split on runs of 2+ spaces}, and its "more" notes."""
    out, notes = {}, []
    for block in text.rstrip("\n").split("\n\n")[1:]:
        title, *rows = block.split("\n")
        notes += [r.strip() for r in rows if r.startswith("  … ")]
        rows = [r for r in rows if not r.startswith("  … ")]
        if title in TITLES[:-1]:
            width = len(re.split(r"\s{2,}", rows[0].strip()))
            out[title] = [(re.split(r"\s{2,}", r.strip()) + [""] * width)[:width] for r in rows[1:]]  # an empty last cell
    return out, notes


def check_structure(where, text):
    """The shape, the tables, the text outside code spans; returns the parse."""
    try:
        doc = md.parse(text)
    except ValueError as e:
        fail(where, str(e))
        return None
    if not OWN_WORDS.fullmatch(md.outside_code(doc["verdict"], in_table=False)):
        fail(where, f"the verdict has markdown outside code spans: {doc['verdict']!r}")
    titles = list(doc["sections"])
    if titles != [t for t in TITLES if t in titles] or titles[-1:] != ["Input"]:
        fail(where, f"sections {titles}")
    for title, section in doc["sections"].items():
        at = f"{where} {title}"
        table = section["table"]
        if table is None:
            if section["lines"][:1] not in (["none"], ["none (no http events in the trace)"]):
                fail(at, f"neither a table nor 'none': {section['lines']}")
            continue
        if len(table) < 2 or not all(md.DELIMITER_CELL.fullmatch(c) for c in table[1]):
            fail(at, f"no delimiter row: {table[:2]}")
        for i, row in enumerate(table):
            if len(row) != len(table[0]):
                fail(at, f"row {i} has {len(row)} cells, the header {len(table[0])}: {row}")
            for cell in row:
                if not OWN_WORDS.fullmatch(md.outside_code(cell)):
                    fail(at, f"row {i}: markdown outside code spans: {cell!r}")
        for line in section["lines"]:
            if not re.fullmatch(r"… (and )?\d+ more.*", line) or not OWN_WORDS.fullmatch(md.outside_code(line, False)):
                fail(at, f"a line that is no note of the tool's: {line!r}")
    return doc


def check_against_human(where, doc, human):
    tables, notes = human_sections(human)
    for title in TITLES[:-1]:
        got = [[md.decode(c) for c in r] for r in md.rows(doc["sections"].get(title, {"table": None}))]
        if got != tables.get(title, []):
            fail(f"{where} {title}", f"markdown rows {got} differ from the human output's {tables.get(title, [])}")
    md_notes = [md.decode(line, False) for s in doc["sections"].values() for line in s["lines"] if line.startswith("…")]
    if [n.replace("--format json", "--json") for n in md_notes] != notes:
        fail(where, f"notes {md_notes} differ from the human output's {notes}")


def check_hostile(where, doc, trace):
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    cells = lambda title, col: [md.decode(r[col]) for r in md.rows(doc["sections"][title])]
    want_exes = {clean(e["exe"]) for e in events}
    if set(cells("Processes", 1)) != want_exes:
        fail(where, f"exe cells {cells('Processes', 1)}, want {sorted(want_exes)}")
    want_hosts = {clean(e["host"].lower()) for e in events if e["ev"] == "connect"}
    if set(cells("Hosts", 0)) != want_hosts:
        fail(where, f"host cells {cells('Hosts', 0)}, want {sorted(want_hosts)}")
    http_rows = {(md.decode(r[1]), md.decode(r[2])) for r in md.rows(doc["sections"]["HTTP requests"])}
    want_http = {(clean(e["method"]), clean(re.split(r"[?#]", e["path"])[0])) for e in events if e["ev"] == "http"}
    if http_rows != want_http:
        fail(where, f"http (method, path) {sorted(http_rows)}, want {sorted(want_http)}")
    whats = cells("Errors", 2)
    for e in events:
        for key in ("error", "message", "errno", "reason"):
            if key in e and e["ev"] != "connect" and not any(clean(e[key]) in w for w in whats):
                fail(where, f"no error row shows {key} {clean(e[key])!r}: {whats}")


def render(where, text, hostile_values):
    """cmark-gfm's HTML of text (raw HTML allowed, as a permissive renderer would)."""
    out = subprocess.run(["cmark-gfm", "--unsafe", "-e", "table", "-e", "strikethrough", "-e", "autolink"],
                         input=text, capture_output=True, text=True, check=True).stdout
    tags = set(re.findall(r"<([A-Za-z][A-Za-z0-9]*)", out))
    if tags - HTML_TAGS:
        fail(where, f"cmark-gfm made elements {sorted(tags - HTML_TAGS)} of it")
    for table in re.findall(r"<table>.*?</table>", out, re.S):
        head, body = table.split("</thead>")
        width = len(re.findall(r"<th[ >]", head))
        for tr in re.findall(r"<tr>.*?</tr>", body, re.S):
            if len(re.findall(r"<td[ >]", tr)) != width:
                fail(where, f"cmark-gfm rendered a row of {len(re.findall(r'<td[ >]', tr))} cells under {width} headers: {tr!r}")
    codes = {html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", out, re.S)}
    for v in hostile_values:
        if v not in codes:
            fail(where, f"cmark-gfm shows no <code> of {v!r}")


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    tool, gen_trace = (str(Path(p).resolve()) for p in sys.argv[1:])  # meson: relative to the build dir
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jsonl"
        subprocess.run([*WRAPPER, gen_trace, big, "1"], check=True, capture_output=True)
        traces = REALISTIC + [[str(big)]]
        rendered = []
        for files in traces:
            where = f"summary --format markdown {' '.join(Path(f).name for f in files)}"
            text = run(tool, "summary", "--format", "markdown", *files)
            doc = check_structure(where, text)
            if doc:
                check_against_human(where, doc, run(tool, "summary", *files))
            rendered.append((where, text, []))
        hostile = DATA / "hostile.jsonl"
        where = "summary --format markdown hostile.jsonl"
        text = run(tool, "summary", "--format", "markdown", "hostile.jsonl")
        doc = check_structure(where, text)
        if doc:
            check_hostile(where, doc, hostile)
            rendered.append((where, text, [md.decode(c) for r in md.rows(doc["sections"]["HTTP requests"]) for c in r[1:3]]
                             + [md.decode(r[0]) for r in md.rows(doc["sections"]["Hosts"])]))
    if not shutil.which("cmark-gfm"):
        print("check_markdown: cmark-gfm is missing (Debian package cmark-gfm: run scripts/bootstrap)", file=sys.stderr)
        return 1
    for where, text, values in rendered:
        render(where, text, values)
    rendering = "rendered with cmark-gfm"
    for f in failures:
        print(f, file=sys.stderr)
    print(f"check_markdown: {len(traces) + 1} summaries, {rendering}, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
