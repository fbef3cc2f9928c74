#!/usr/bin/env python3
"""Recounts the facts the awf-shim-trace goldens state from the raw events in data/, and the facts
of `summary --json` over any trace (tests/integration/trace_recount.py runs it over the traces the
integration suite records).

The goldens are the tool's own output: the golden test (golden_test.cc) only checks that the tool
still says the same. This checks that what it says is true, with none of its code: for every case of
cases.txt, it reads the input traces with the rules of README.md "Trace" and shim/tools/README.md
(bad lines skipped and counted, files merged by time) and compares

  summary --json / text   per process, per host, per HTTP group (count, percentiles), error
                          groups, verdict numbers, input counts
  errors --json / text    which lines are problems, of which kind, with which context
  timeline                which events, in which order, after --pid/--host
  har                     one entry per parsed http event: method, URL, status, times, sizes
  STEM.stderr             which lines were skipped, the counts, the exit status, har's notes

Run by meson (`meson test -C build trace_tool_recount`) or as is; exit status 1 on a mismatch,
one line per fact: "golden/FILE WHERE: the golden says X, the traces say Y". Where a text shows
numbers it does not tabulate (a timeline line, an error's description), each must be one its
events hold. For other traces: check_summary(chk, where, doc, paths) with doc the tool's
`summary --json` over paths (as they were passed to it).
"""
import calendar
import heapq
import http
import json
import math
import re
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import mdsummary

HERE = Path(__file__).resolve().parent
DATA, GOLDEN = HERE / "data", HERE / "golden"
KNOWN_EVENTS = {"init", "error", "dns", "connect", "tunnel", "tls", "tap", "http", "close", "trace_dropped"}
MAX_LINE = 1 << 20
# shim/tools/README.md: past these, further processes / hosts / request groups share one "(other
# …)" row each; error kinds past MAX_ERROR_GROUPS are only counted; latency percentiles come from
# at most MAX_SAMPLES samples per group (a sample of them beyond).
MAX_PROCS = MAX_HOSTS = MAX_HTTP_GROUPS = 10_000
MAX_ERROR_GROUPS = 1000
MAX_SAMPLES = 10_000
MAX_PORTS = 16  # listed per host: the first ones seen; more_ports past them
TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


class Event(NamedTuple):
    file: str
    line: int
    us: int  # ts, microseconds since the epoch
    e: dict


def parse_ts(v):
    m = TS.fullmatch(v) if isinstance(v, str) else None
    if not m:
        return None
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    return secs * 1_000_000 + int((m.group(7) or "").ljust(6, "0"))


def time_of_day(us):
    s, frac = divmod(us, 1_000_000)
    return f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{frac:06d}"


def read_trace(path, name=None):
    """The events of one file, its input counts (as summary --json names them), the skipped lines.
    name: the file as the tool was given it (default: path)."""
    name = str(path) if name is None else name
    raw = Path(path).read_bytes()
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file ends with a newline (or is empty)
    unterminated = bool(raw) and not raw.endswith(b"\n")
    stats = {"file": name, "lines": len(lines), "events": 0, "unreadable": 0,
             "truncated_last_line": False, "other_schema": 0, "unknown_events": Counter()}
    events, skipped = [], []
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue  # blank: neither an event nor a bad line
        why = None
        try:
            e = json.loads(text) if len(text) <= MAX_LINE else None
        except ValueError:
            e = None
            if n == len(lines) and unterminated:
                stats["truncated_last_line"] = True
        if not isinstance(e, dict) or not isinstance(e.get("ev"), str) or parse_ts(e.get("ts")) is None:
            why = "unreadable"
        if isinstance(e, dict) and e.get("schema", 1) != 1:
            why = "other_schema"
        if why is None and e["ev"] not in KNOWN_EVENTS:
            stats["unknown_events"][e["ev"]] += 1
            why = "unknown"
        if why is None:
            events.append(Event(name, n, parse_ts(e["ts"]), e))
        else:
            skipped.append(n)
            if why != "unknown":
                stats[why] += 1
    stats["events"] = len(events)
    return events, stats, skipped


def read_traces(files):
    """files: (path, name) pairs. Their events merged as the tool merges them: each file in its own
    order, the next event the one of smallest time among the files' next ones (ties: the earlier
    file); the input counts and skipped lines per file."""
    read = [read_trace(path, name) for path, name in files]
    events = list(heapq.merge(*(evs for evs, _, _ in read), key=lambda ev: ev.us))
    return events, [st for _, st, _ in read], [sk for _, _, sk in read]


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers(text):
    """The numbers in text; a control character the tool shows as \\xNN (clean) holds none."""
    return {float(x) for x in NUMBER.findall(re.sub(r"\\x[0-9a-f]{2}", " ", text))}


def numbers_of(*events):
    """The numbers an event's line holds (with its line number): what a description of it may show."""
    return {ev.line for ev in events} | numbers(" ".join(json.dumps(ev.e, ensure_ascii=False) for ev in events))


HOST_PORT = re.compile(r"\[(?P<v6>[^\]]*)\](?::(?P<v6port>[0-9]{1,5}))?|(?P<name>[^:]*):(?P<port>[0-9]{1,5})")


def split_host_port(text):
    """"host:port", "[v6]:port", "[v6]" or a bare host (a bare IPv6 address has no port) ->
    (host without brackets, port or None)."""
    m = HOST_PORT.fullmatch(text)
    if not m:
        return text, None
    if m.group("v6") is not None:
        return m.group("v6"), int(m.group("v6port")) if m.group("v6port") else None
    return m.group("name"), int(m.group("port"))


def endpoint(e):
    """(host, port) an event is about (README.md "Trace"), host lowercased, port None where the
    event names none: the host is `host`, else `target` (host:port), else `addr`; the port is the
    one in that field, else `port` (close), else the one of `addr` (connect: a routed name's)."""
    text = next((e[k] for k in ("host", "target", "addr") if isinstance(e.get(k), str) and e[k]), None)
    if text is None:
        return None, None
    host, port = split_host_port(text)
    if not port and isinstance(e.get("port"), int) and not isinstance(e["port"], bool) and 0 < e["port"] <= 65535:
        port = e["port"]
    if not port and isinstance(e.get("addr"), str):
        port = split_host_port(e["addr"])[1]
    return host.lower(), port or None


def host_of(e):
    return endpoint(e)[0]


def path_only(path):
    return re.split(r"[?#]", path, maxsplit=1)[0]


def known_ms(v):
    """A duration, or None: -1 and anything past 10^12 ms mean not known (shim/tools/README.md)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1e12:
        return None
    return v


def parsed_http(e):
    """An http event with a request: one without a method (HTTP/2, or not HTTP/1.x at all) is a
    connection the tap could not parse."""
    return isinstance(e.get("method"), str) and e["method"] != ""


def interrupted_http(e):
    """An exchange the process exited in the middle of: interrupted, not failed, whatever its status."""
    return parsed_http(e) and e.get("incomplete") is True


def failed_http(e):
    return parsed_http(e) and not interrupted_http(e) and not 0 < e.get("status", 0) < 400


def nearest_rank(samples, p):
    if not samples:
        return None
    s = sorted(samples)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def problems(events):
    """(event, kind, group key, context) per problem, in time order. The context names the connect
    a tunnel (or an http exchange) went through, and the configuration error that made the shim
    refuse a connection: {"connect": Event} and the like."""
    out, last_connect, last_error = [], {}, {}
    for ev in events:
        e, name, pid = ev.e, ev.e["ev"], ev.e.get("pid")
        via = {"connect": last_connect[pid, e["fd"]]} if (pid, e.get("fd")) in last_connect else {}
        found = None
        if name == "tunnel" and e.get("result") == "failed":
            found = ("tunnel_refused" if e.get("status") else "tunnel_failed",
                     (e.get("by"), e.get("target"), e.get("status"), e.get("squid_error"), e.get("errno"),
                      e.get("reason")), via)
        elif name == "connect" and e.get("decision") == "refuse":
            found = ("connect_refused", (e.get("host") or e.get("addr"), e.get("reason")),
                     {"configuration_error": last_error[pid]} if pid in last_error else {})
        elif name == "error":
            found = ("configuration_error", (e.get("where"), e.get("message"), e.get("effect")), {})
        elif name == "tap" and e.get("outcome") == "refused":
            found = ("tap_refused", (e.get("reason"),), {})
        elif name == "dns" and "error" in e:
            found = ("dns_error", (e.get("host"), e.get("error")), {})
        elif name == "http" and (failed_http(e) or interrupted_http(e)):
            # via: the latest connect of this pid and fd at or before it (events are in time
            # order), closed or not
            found = ("http_interrupted" if interrupted_http(e) else "http_error",
                     (e.get("method"), e.get("host"), path_only(e.get("path", "")), e.get("status", 0)), via)
        elif name == "trace_dropped":
            found = ("trace_dropped", (e.get("reason"),), {})
        if found:
            kind, key, context = found
            out.append((ev, kind, (e.get("exe"), kind) + key, context))
        if name == "init":
            out += [(ev, "warning", (e.get("exe"), "warning", w), {})
                    for w in e.get("warnings", []) if isinstance(w, str)]
        if name == "connect":
            last_connect[pid, e.get("fd")] = ev
        elif name == "error":
            last_error[pid] = ev
    return out


def capped(rows, key, cap, other, new):
    """The key of the row of rows that key counts in: its own (new()) while there are fewer than
    cap, else other, the one they share."""
    if key not in rows and len(rows) - (other in rows) >= cap:
        key = other
    rows.setdefault(key, new())
    return key


def summarize(events):
    procs, hosts, groups = {}, {}, {}

    def host(e):
        name, port = endpoint(e)
        key = capped(hosts, name or "?", MAX_HOSTS, "(other hosts)",
                     lambda: {"ports": {}, "connects": 0, "open": 0, "failed": 0, "outcomes": Counter(),
                              "bytes_out": 0, "bytes_in": 0, "closes": 0, "open_at_exit": 0, "http_requests": 0})
        if port:
            hosts[key]["ports"][port] = True  # in the order they came
        return key, hosts[key]

    for ev in events:
        e, name = ev.e, ev.e["ev"]
        # A process is a pid and an executable: one that execs is a new one.
        p = procs[capped(procs, (e.get("pid"), e.get("exe")), MAX_PROCS, (None, "(other processes)"),
                         lambda: {"first": ev, "last": ev, "events": 0, "connects": Counter(), "open": 0,
                                  "failed": 0, "errors": 0, "http_requests": 0})]
        p["events"] += 1
        p["first"] = min(p["first"], ev, key=lambda x: x.us)
        p["last"] = max(p["last"], ev, key=lambda x: x.us)
        hname, h = host(e) if name in ("connect", "tunnel", "close", "http") else (None, None)
        if name == "connect":
            d = e.get("decision")
            p["connects"][d if d in ("tunnel", "direct", "bypass", "refuse") else "other"] += 1
            h["connects"] += 1
        elif name == "tunnel":
            result = "open" if e.get("result") == "open" else "failed"
            p[result] += 1
            h[result] += 1
            squid = (e.get("squid_error") or "").split(" ")[0] or None
            h["outcomes"][(result, e.get("status"), squid, e.get("errno"), e.get("by"))] += 1
        elif name == "close":
            h["bytes_out"] += e.get("bytes_out", 0)
            h["bytes_in"] += e.get("bytes_in", 0)
            if not e.get("inherited"):  # a fork child's copy: its bytes count, the connection goes on
                h["closes"] += 1
            h["open_at_exit"] += bool(e.get("open_at_exit"))
        elif name == "error":
            p["errors"] += 1
        elif name == "http":
            p["http_requests"] += 1
            h["http_requests"] += 1
            parsed = parsed_http(e)
            protocol = e["protocol"] if isinstance(e.get("protocol"), str) else "?"
            key = (hname, e["method"] if parsed else protocol,
                   path_only(e.get("path", "")) if parsed else "(not parsed)", e.get("status", 0))
            key = capped(groups, key, MAX_HTTP_GROUPS, ("(other requests)", "*", "", 0), list)
            groups[key].append(known_ms(e.get("ms")) if parsed else None)

    http_groups = {}
    for key, ms in groups.items():
        samples = [m for m in ms if m is not None]
        http_groups[key] = {"count": len(ms), "samples": min(len(samples), MAX_SAMPLES),
                            **{f"p{p}_ms": nearest_rank(samples, p) for p in (50, 90, 99)}}
        if len(samples) > MAX_SAMPLES:  # the tool's percentiles are of a sample: any of them may be one
            http_groups[key]["of"] = samples
    error_groups, errors_not_grouped = {}, 0
    for ev, _, key, _ in problems(events):
        if key not in error_groups and len(error_groups) >= MAX_ERROR_GROUPS:
            errors_not_grouped += 1
            continue
        g = error_groups.setdefault(key, {"exe": ev.e.get("exe"), "first_pid": ev.e.get("pid"), "count": 0, "first": ev})
        g["count"] += 1
    http_events = [ev.e for ev in events if ev.e["ev"] == "http"]
    failed = lambda h, by_proxy: any(k[0] == "failed" and bool(k[1]) == by_proxy for k in h["outcomes"])
    verdict = {
        "hosts tunnelled": sum(1 for h in hosts.values() if h["open"]),
        "refused by the proxy": sum(1 for h in hosts.values() if failed(h, True)),
        "not reached through the proxy": sum(1 for h in hosts.values() if failed(h, False)),
        "refused by the shim": sum(p["connects"]["refuse"] for p in procs.values()),
        "configuration errors": sum(p["errors"] for p in procs.values()),
        "failed name lookups": sum(1 for ev in events if ev.e["ev"] == "dns" and "error" in ev.e),
        "HTTP requests": sum(1 for e in http_events if parsed_http(e)),
        "HTTP requests failed": sum(1 for e in http_events if failed_http(e)),
        "HTTP requests interrupted": sum(1 for e in http_events if interrupted_http(e)),
        "HTTP connections not parsed": sum(1 for e in http_events if not parsed_http(e)),
        "trace events lost": sum(max(0, ev.e.get("dropped", 0)) for ev in events if ev.e["ev"] == "trace_dropped"
                                 and isinstance(ev.e.get("dropped"), int)),
    }
    return {"procs": procs, "hosts": hosts, "http": http_groups,
            "errors": list(error_groups.values()), "errors_not_grouped": errors_not_grouped,
            "verdict": verdict}


VERDICT = {
    "hosts tunnelled": r"(\d+|no) hosts? tunnelled",
    "refused by the proxy": r"(\d+) refused by the proxy",
    "not reached through the proxy": r"(\d+) not reached through the proxy",
    "refused by the shim": r"(\d+) connections? refused by the shim",
    "configuration errors": r"(\d+) configuration errors?",
    "failed name lookups": r"(\d+) failed name lookups?",
    "HTTP requests": r"(\d+) HTTP requests?",
    "HTTP requests failed": r"HTTP requests? \((\d+) failed[,)]",
    "HTTP requests interrupted": r"HTTP requests? \((?:\d+ failed, )?(\d+) interrupted\)",
    "trace events lost": r"(\d+) trace events? lost",
    "HTTP connections not parsed": r"(\d+) HTTP connections? not parsed",
}


class Checker:
    def __init__(self, teller="the golden"):
        self.failures = []
        self.teller = teller  # who said what is checked

    def eq(self, where, golden, recount):
        if isinstance(golden, dict) and isinstance(recount, dict):  # name the very field that differs
            for k in sorted(golden.keys() | recount.keys()):
                self.eq(f"{where}.{k}", golden.get(k, "(absent)"), recount.get(k, "(absent)"))
        elif golden != recount:
            self.failures.append(f"{where}: {self.teller} says {golden!r}, the traces say {recount!r}")

    def numbers(self, where, text, events, also=()):
        """Every number in text (a description, "1.200 ms" for 1.2) is one the events hold."""
        extra = numbers(text) - numbers_of(*events) - set(also)
        if extra:
            self.failures.append(f"{where}: {self.teller} shows {sorted(extra)} in {text!r}, "
                                 "which its events do not hold")

    def verdict(self, where, text, s):
        for fact, pattern in VERDICT.items():
            m = re.search(pattern, text)
            said = 0 if not m or m.group(1) == "no" else int(m.group(1))
            self.eq(f"{where} verdict '{fact}'", said, s["verdict"][fact])


def count(pattern, text):
    m = re.search(pattern, text)
    return int(m.group(1)) if m else 0


def outcome_label(result, status, squid, errno, by):
    label = " ".join(str(x) for x in (status, squid) if x) if status else errno or result
    return label + " (application's CONNECT)" if by == "application" else label


def listed_ports(ports):
    """The ports the summary lists of a host, and whether there were more."""
    return sorted(list(ports)[:MAX_PORTS]), len(ports) > MAX_PORTS


def ports_text(ports):
    listed, more = listed_ports(ports)
    return ", ".join(map(str, listed)) + (", …" if more else "") or "-"


def verdict_more(text):
    """The "and N more" counts of the verdict's lists (of refused hosts): numbers it may show."""
    return [int(n) for n in re.findall(r" and (\d+) more", text)]


def check_summary_json(chk, where, doc, s, stats, events):
    chk.verdict(where, doc["verdict"], s)
    chk.numbers(f"{where} verdict", doc["verdict"], events, [*s["verdict"].values(), *verdict_more(doc["verdict"])])
    chk.eq(f"{where} processes (pid, exe)", sorted(((p["pid"], p["exe"]) for p in doc["processes"]), key=str),
           sorted(s["procs"], key=str))
    for p in doc["processes"]:
        r = s["procs"].get((p["pid"], p["exe"]))
        if not r:
            continue
        at = f"{where} processes[{p['pid']} {p['exe']}]"
        c = r["connects"]
        chk.eq(at, p, {"pid": p["pid"], "exe": p["exe"], "first_ts": r["first"].e["ts"], "last_ts": r["last"].e["ts"],
                       "events": r["events"],
                       "connects": {"total": sum(c.values()), **{k: c[k] for k in ("tunnel", "direct", "bypass", "refuse", "other")}},
                       "tunnels": {"open": r["open"], "failed": r["failed"]}, "errors": r["errors"],
                       "http_requests": r["http_requests"]})
    chk.eq(f"{where} hosts", sorted(h["host"] for h in doc["hosts"]), sorted(s["hosts"]))
    for h in doc["hosts"]:
        r = s["hosts"].get(h["host"])
        if not r:
            continue
        outcomes = []
        for (result, status, squid, errno, by), n in r["outcomes"].items():
            o = {"outcome": outcome_label(result, status, squid, errno, by), "result": result, "status": status,
                 "squid_error": squid, "errno": errno, "by": by, "count": n}
            outcomes.append({k: v for k, v in o.items() if v is not None})
        chk.eq(f"{where} hosts[{h['host']}]", {**h, "outcomes": sorted(h["outcomes"], key=json.dumps)},
               {"host": h["host"], "ports": listed_ports(r["ports"])[0],
                **({"more_ports": True} if listed_ports(r["ports"])[1] else {}), "connects": r["connects"],
                "tunnels": {"open": r["open"], "failed": r["failed"]},
                "outcomes": sorted(outcomes, key=json.dumps),
                **{k: r[k] for k in ("bytes_out", "bytes_in", "closes", "open_at_exit", "http_requests")}})
    golden_http = {(g["host"], g["method"], g["path"], g["status"]): g for g in doc["http"]}
    chk.eq(f"{where} http groups", sorted(golden_http), sorted(s["http"]))
    for key, g in golden_http.items():
        if key in s["http"]:
            r = dict(s["http"][key])
            sampled = {round(x, 3) for x in r.pop("of", [])}
            for p in ("p50_ms", "p90_ms", "p99_ms"):
                if g[p] in sampled:
                    r[p] = g[p]
            chk.eq(f"{where} http[{' '.join(map(str, key))}]",
                   {k: v for k, v in g.items() if k not in ("host", "method", "path", "status")}, r)
    chk.eq(f"{where} errors (exe, first_pid, count)", sorted((g["exe"], g["first_pid"], g["count"]) for g in doc["errors"]),
           sorted((g["exe"], g["first_pid"], g["count"]) for g in s["errors"]))
    held = {}  # (exe, first_pid) -> the numbers of the first events of those groups
    for r in s["errors"]:
        held.setdefault((r["exe"], r["first_pid"]), set()).update(numbers_of(r["first"]))
    for g in doc["errors"]:
        chk.numbers(f"{where} errors what", g["what"], [], held.get((g["exe"], g["first_pid"]), ()))
    chk.eq(f"{where} errors_not_grouped", doc["errors_not_grouped"], s["errors_not_grouped"])
    chk.eq(f"{where} http_interrupted", doc.get("http_interrupted"), s["verdict"]["HTTP requests interrupted"])
    chk.eq(f"{where} trace_events_lost", doc.get("trace_events_lost"), s["verdict"]["trace events lost"])
    interrupted_labels(chk, f"{where} errors", [(g["exe"], g["what"]) for g in doc["errors"]], s)
    chk.eq(f"{where} input", doc["input"], [{**st, "unknown_events": dict(st["unknown_events"])} for st in stats])


def interrupted_labels(chk, where, rows, s):
    """The summary's http error groups, (exe, what): those labelled "(interrupted)" are the
    groups of interrupted exchanges, and the others the failed ones."""
    said = sorted((exe, what.endswith("(interrupted)")) for exe, what in rows if what.startswith("http "))
    chk.eq(f"{where} http (exe, interrupted)", said,
           sorted((g["exe"], interrupted_http(g["first"].e)) for g in s["errors"] if g["first"].e["ev"] == "http"))


def sections(text):
    """The text summary's blocks: {title: rows split on runs of 2+ spaces}, the verdict first."""
    blocks = text.rstrip("\n").split("\n\n")
    out = {"verdict": blocks[0]}
    for b in blocks[1:]:
        title, *rows = b.split("\n")
        if title.endswith(": none") or ": none (" in title:
            out[title.split(":")[0]] = []
        else:
            skip = 0 if title == "Input" else 1  # the column header
            out[title] = [re.split(r"\s{2,}", r.strip()) for r in rows[skip:]]
    return out


def clean(s):
    """As the tool's human and markdown output show a value: C0 controls, DEL and C1 controls as
    \\xNN (shim/tools/trace_event.h, Clean)."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 else c for c in s)


def check_summary_text(chk, where, text, s, stats, events):
    sec = sections(text)
    hosts = []
    for r in sec.get("Hosts", []):
        outcomes = dict(o.rsplit(" ×", 1) for o in r[7].split(", ")) if len(r) > 7 else {}
        hosts.append(r[0:7] + [{k: int(v) for k, v in outcomes.items()}])
    inputs = []
    for (row,) in sec.get("Input", []):
        m = re.fullmatch(r"(\S+): (\d+) lines?, (\d+) events?(.*)", row)
        rest = m.group(4)
        inputs.append([m.group(1), int(m.group(2)), int(m.group(3)), count(r"(\d+) unreadable", rest),
                       "(truncated last line)" in rest, count(r"(\d+) of another schema", rest),
                       count(r"(\d+) unknown events?", rest)])
    check_summary_tables(chk, where, sec, hosts, inputs, s, stats, events)


def check_summary_markdown(chk, where, text, s, stats, events):
    """summary --format markdown: the tables as the text's, each value read from its code span
    (tests/trace_tool/mdsummary.py; check_markdown.py checks its structure and escaping)."""
    doc = mdsummary.parse(text)
    sec = {"verdict": mdsummary.decode(doc["verdict"], in_table=False)}
    for title, section in doc["sections"].items():
        sec[title] = [[mdsummary.decode(c) for c in r] for r in mdsummary.rows(section)]
    hosts = [r[0:7] + [mdsummary.outcomes(raw[7])]
             for r, raw in zip(sec.get("Hosts", []), mdsummary.rows(doc["sections"].get("Hosts", {"table": None})))]
    inputs = [[r[0], int(r[1]), int(r[2]), int(r[3].split(" ")[0]), r[3].endswith(" (truncated last line)"), int(r[4]),
               int(r[5])] for r in sec.get("Input", [])]
    check_summary_tables(chk, where, sec, hosts, inputs, s, stats, events)


def check_summary_tables(chk, where, sec, hosts, inputs, s, stats, events):
    """sec: the summary's verdict and tables, {title: rows of cells}, as text; hosts: its Hosts rows
    with the outcomes as {label: count}; inputs: its input counts, as summary --json names them."""
    chk.verdict(where, sec["verdict"], s)
    chk.numbers(f"{where} verdict", sec["verdict"], events, [*s["verdict"].values(), *verdict_more(sec["verdict"])])
    procs = [[int(r[0]), r[1], r[2]] + [int(x) for x in r[3:]] for r in sec.get("Processes", [])]
    chk.eq(f"{where} Processes", sorted(procs), sorted(
        [pid, clean(exe), time_of_day(p["first"].us), sum(p["connects"].values()), p["connects"]["tunnel"],
         p["connects"]["direct"], p["connects"]["bypass"], p["connects"]["refuse"], p["failed"], p["errors"]]
        for (pid, exe), p in s["procs"].items()))
    hosts = [r[0:2] + [int(x) for x in r[2:7]] + r[7:] for r in hosts]
    chk.eq(f"{where} Hosts", sorted(hosts, key=str), sorted(
        ([clean(name), ports_text(h["ports"]), h["connects"], h["open"], h["failed"], h["bytes_out"], h["bytes_in"],
          {clean(outcome_label(*k)): n for k, n in h["outcomes"].items()}] for name, h in s["hosts"].items()), key=str))
    num = lambda x: None if x == "-" else float(x)
    chk.eq(f"{where} HTTP requests",
           sorted((r[0], r[1], r[2], int(r[3]) if r[3] != "-" else 0, int(r[4]), *map(num, r[5:8]))
                  for r in sec.get("HTTP requests", [])),
           sorted((*map(clean, k[:3]), k[3], g["count"], g["p50_ms"], g["p90_ms"], g["p99_ms"])
                  for k, g in s["http"].items()))
    chk.eq(f"{where} Errors (exe, count)", sorted((r[1], int(r[0])) for r in sec.get("Errors", [])),
           sorted((clean(g["exe"]), g["count"]) for g in s["errors"]))
    for r in sec.get("Errors", []):
        chk.numbers(f"{where} Errors what", r[2], [g["first"] for g in s["errors"] if clean(g["exe"]) == r[1]])
    interrupted_labels(chk, f"{where} Errors", [(r[1], r[2]) for r in sec.get("Errors", [])],
                       {**s, "errors": [{**g, "exe": clean(g["exe"])} for g in s["errors"]]})
    chk.eq(f"{where} Input", inputs, [[st["file"], st["lines"], st["events"], st["unreadable"], st["truncated_last_line"],
                                       st["other_schema"], sum(st["unknown_events"].values())] for st in stats])


def check_errors_json(chk, where, text, found):
    docs = [json.loads(line) for line in text.splitlines()]
    chk.eq(f"{where} problems (file, line)", [(d["file"], d["line"]) for d in docs],
           [(ev.file, ev.line) for ev, *_ in found])
    for d, (ev, kind, _, context) in zip(docs, found):
        e, at = ev.e, f"{where} {d['file']}:{d['line']}"
        said = {k: ({x: v[x] for x in ("file", "line", "ts")} if k != "event" and isinstance(v, dict) else v)
                for k, v in d.items() if k != "what"}
        chk.eq(at, said, {"file": ev.file, "line": ev.line, "ts": e["ts"], "pid": e.get("pid"), "tid": e.get("tid"),
                          "exe": e.get("exe"), "kind": kind, "event": e,
                          **{k: {"file": c.file, "line": c.line, "ts": c.e["ts"]} for k, c in context.items()}})
        chk.numbers(f"{at} what", d["what"], [ev])
        for k, c in context.items():
            if isinstance(d.get(k), dict):
                chk.numbers(f"{at} {k} text", d[k]["text"], [c])


def check_errors_text(chk, where, text, found):
    *body, last = text.rstrip("\n").split("\n")
    head = re.compile(r"(\S+):(\d+) (\S+) (.+?)\[(\d+)/(\d+)\] ")
    heads = [m.groups() for m in map(head.match, body) if m]
    blocks = re.split(r"\n(?=\S)", "\n".join(body)) if body else []
    for block, (ev, kind, _, context) in zip(blocks, found):
        chk.numbers(f"{where} {ev.file}:{ev.line}", block, [ev, *context.values()])
        first = block.split("\n", 1)[0]
        if kind in ("http_error", "http_interrupted"):
            chk.eq(f"{where} {ev.file}:{ev.line} labelled interrupted", first.endswith("(interrupted)"),
                   kind == "http_interrupted")
        chk.eq(f"{where} {ev.file}:{ev.line} shows its connect", "\n    connect " in block, "connect" in context)
        if kind == "trace_dropped":
            chk.eq(f"{where} {ev.file}:{ev.line} what", first.split("] ", 1)[1],
                   f"the trace lost {ev.e.get('dropped')} events: {ev.e.get('reason')}")
    chk.eq(f"{where} problems", heads, [(ev.file, str(ev.line), time_of_day(ev.us), ev.e.get("exe"), str(ev.e.get("pid")),
                                         str(ev.e.get("tid"))) for ev, *_ in found])
    n = len(found)
    chk.eq(f"{where} last line", last, "no problems found" if not n else f"{n} problem{'s' if n > 1 else ''}")


def check_timeline(chk, where, text, events):
    got = [m.groups() if m else line for line, m in
           ((line, re.match(r"(\S+) (.+?)\[(\d+)/(\d+)\]\s+(\S+)", line)) for line in text.splitlines())]
    chk.eq(f"{where} events", got, [(time_of_day(ev.us), ev.e.get("exe"), str(ev.e.get("pid")), str(ev.e.get("tid")),
                                     ev.e["ev"]) for ev in events])
    for line, ev in zip(text.splitlines(), events):
        chk.numbers(f"{where} {time_of_day(ev.us)}", line, [ev])


def har_entry(ev):
    e = ev.e
    duration = known_ms(e.get("ms")) or 0
    ttfb = known_ms(e.get("ttfb_ms"))
    wait = ttfb if ttfb is not None and ttfb <= duration else duration
    start = (ev.us - round(duration * 1000)) // 1000  # ts - ms, in ms rounded down
    y, mo, d, h, mi, s = time.gmtime(start // 1000)[:6]
    status = e.get("status", 0)
    query = urllib.parse.urlsplit(e.get("path", "")).query
    host, port = split_host_port(e.get("host", ""))[0], endpoint(e)[1]  # the host as written
    authority = (f"[{host}]" if ":" in host else host) + (f":{port}" if port and port != 443 else "")
    return {"startedDateTime": f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{start % 1000:03d}Z", "time": duration,
            "method": e["method"], "url": f"https://{authority}{e.get('path', '')}",
            "queryString": [{"name": k, "value": v} for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)],
            "request headers": [{"name": "Host", "value": e.get("host")}]
            + ([{"name": "Content-Type", "value": e["request_content_type"]}] if "request_content_type" in e else []),
            "bodySize": e.get("req_bytes", 0), "request comment": e.get("request_summary"),
            "status": status, "statusText": http.HTTPStatus(status).phrase if status else "",
            "response headers": [{"name": "Content-Type", "value": e["content_type"]}] if "content_type" in e else [],
            "content size": e.get("resp_bytes", 0), "response bodySize": e.get("resp_bytes", 0),
            "mimeType": e.get("content_type", "x-unknown"), "httpVersion": ["HTTP/1.1", "HTTP/1.1"], "headersSize": [-1, -1],
            "content comment": e.get("usage"), "timings": {"send": 0, "wait": wait, "receive": round(duration - wait, 3)},
            "comment": e.get("problem"), "_pid": e.get("pid"), "_exe": e.get("exe"), "_ts": e["ts"]}


def check_har(chk, where, text, events):
    log = json.loads(text)["log"]
    chk.eq(f"{where} log", (log["version"], log["creator"]["name"]), ("1.2", "awf-shim-trace"))
    entries = log["entries"]
    want, connects = [], {}  # (pid, fd) -> (ts of the latest connect, how many so far)
    for ev in events:
        e = ev.e
        if e["ev"] == "connect" and isinstance(e.get("fd"), int):
            connects[e.get("pid"), e["fd"]] = (ev.us, connects.get((e.get("pid"), e["fd"]), (0, 0))[1] + 1)
        elif e["ev"] == "http" and parsed_http(e):
            w = har_entry(ev)
            c = connects.get((e.get("pid"), e.get("fd")))
            # the connect behind it: "PID:FD", "#N" for the N-th connect of that fd (N >= 2)
            w["connection"] = None if c is None or c[0] > ev.us else \
                f"{e['pid']}:{e['fd']}" + (f"#{c[1]}" if c[1] > 1 else "")
            w["_interrupted"] = True if interrupted_http(e) else None
            want.append(w)
    chk.eq(f"{where} entries", len(entries), len(want))
    comment = lambda s: json.loads(s) if s is not None else None
    for i, (g, w) in enumerate(zip(entries, want)):
        req, resp = g["request"], g["response"]
        chk.eq(f"{where} entries[{i}]",
               {"startedDateTime": g["startedDateTime"], "time": g["time"], "method": req["method"], "url": req["url"],
                "queryString": req["queryString"], "request headers": req["headers"], "bodySize": req["bodySize"],
                "request comment": comment(req.get("comment")), "status": resp["status"],
                "statusText": resp["statusText"], "response headers": resp["headers"],
                "content size": resp["content"]["size"], "response bodySize": resp["bodySize"],
                "httpVersion": [req["httpVersion"], resp["httpVersion"]], "headersSize": [req["headersSize"], resp["headersSize"]],
                "mimeType": resp["content"]["mimeType"], "content comment": comment(resp["content"].get("comment")),
                "timings": g["timings"], "comment": g.get("comment"), "_pid": g["_pid"], "_exe": g["_exe"],
                "_ts": g["_ts"], "connection": g.get("connection"), "_interrupted": g.get("_interrupted")}, w)


def check_stderr(chk, name, cmd, stats, skipped, events):
    """golden/STEM.stderr: "exit status N" and stderr, absent when the run had neither."""
    path = GOLDEN / (name.rsplit(".", 1)[0] + ".stderr")
    text = path.read_text() if path.exists() else ""
    status = 1 if any(st["unreadable"] for st in stats) else 0
    lines = text.splitlines()
    chk.eq(f"{path.name} exit status", lines[0] if lines else "exit status 0", f"exit status {status}")
    chk.eq(f"{path.name} skipped lines", sorted((f, int(n)) for f, n in re.findall(r"^(\S+):(\d+): .*: skipped$", text, re.M)),
           sorted((st["file"], n) for st, lines_skipped in zip(stats, skipped) for n in lines_skipped))
    chk.eq(f"{path.name} files with skipped lines",
           sorted((f, int(n), int(total), count(r"(\d+) unreadable", why), count(r"(\d+) of another schema", why),
                   count(r"(\d+) unknown events?", why))
                  for f, n, total, why in re.findall(r"^(\S+): (\d+) of (\d+) lines skipped: (.*)$", text, re.M)),
           sorted((st["file"], len(s), st["lines"], st["unreadable"], st["other_schema"], sum(st["unknown_events"].values()))
                  for st, s in zip(stats, skipped) if s))
    if cmd == "har":
        http_events = [ev.e for ev in events if ev.e["ev"] == "http"]
        m = re.search(r"(\d+) http events? without a parsed request", text)
        chk.eq(f"{path.name} http events left out", int(m.group(1)) if m else 0,
               sum(1 for e in http_events if not parsed_http(e)))
        chk.eq(f"{path.name} says there are no http events", "no http events in the input" in text, not http_events)


FORMATS = {"summary": ("pretty", "markdown", "json"), "errors": ("pretty", "json")}  # --format's values


def check_usage_error(chk, name, option, choices):
    """A case whose option has no valid value: no output, exit status 2, a message that names the
    option and the valid values."""
    path = GOLDEN / (name.rsplit(".", 1)[0] + ".stderr")
    err = path.read_text().splitlines() if path.exists() else []
    chk.eq(f"golden/{name} (a usage error)", (GOLDEN / name).read_text(), "")
    chk.eq(f"{path.name} exit status", err[:1], ["exit status 2"])
    said = err[1] if len(err) > 1 else ""
    chk.eq(f"{path.name} names {option} and {', '.join(choices)}",
           all(w in said for w in [option.split(" ")[0], *choices]), True)


def check_case(chk, name, args):
    cmd, rest = args[0], args[1:]
    options, files = {}, []
    while rest:
        a = rest.pop(0)
        if a.startswith("--") and "=" in a:  # --name=value
            a, value = a.split("=", 1)
            rest.insert(0, value)
        if a == "--json":
            options["--format"] = "json"
        elif a in ("--pid", "--host") and cmd == "timeline" or a == "--format" and cmd in FORMATS:
            options[a] = rest.pop(0)
        elif a.startswith("-"):
            chk.failures.append(f"cases.txt {name}: recount.py does not know {cmd} {a}: teach it")
            return
        else:
            files.append(a)
    fmt = options.get("--format", "pretty")
    if cmd in FORMATS and fmt not in FORMATS[cmd]:
        check_usage_error(chk, name, f"--format {fmt}", FORMATS[cmd])
        return
    events, stats, skipped = read_traces([(DATA / f, f) for f in files])
    if "--pid" in options:
        events = [ev for ev in events if str(ev.e.get("pid")) == options["--pid"]]
    if "--host" in options:
        events = [ev for ev in events if host_of(ev.e) == split_host_port(options["--host"])[0].lower()]
    text = (GOLDEN / name).read_text()
    where = f"golden/{name}"
    if cmd == "summary":
        s = summarize(events)
        if fmt == "json":
            check_summary_json(chk, where, json.loads(text), s, stats, events)
        elif fmt == "markdown":
            check_summary_markdown(chk, where, text, s, stats, events)
        else:
            check_summary_text(chk, where, text, s, stats, events)
    elif cmd == "errors":
        (check_errors_json if fmt == "json" else check_errors_text)(chk, where, text, problems(events))
    elif cmd == "timeline":
        check_timeline(chk, where, text, events)
    elif cmd == "har":
        check_har(chk, where, text, events)
    else:
        chk.failures.append(f"cases.txt {name}: recount.py does not know the command {cmd}")
        return
    check_stderr(chk, name, cmd, stats, skipped, events)


def check_summary(chk, where, doc, files):
    """doc: what `awf-shim-trace summary --json` said of files, (path, name) pairs: name as the
    tool was given the file (its input counts say it)."""
    events, stats, _ = read_traces(files)
    check_summary_json(chk, where, doc, summarize(events), stats, events)


def main():
    chk = Checker()
    cases = [line.split() for line in (HERE / "cases.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for name, *args in cases:
        try:
            check_case(chk, name, args)
        except Exception as e:  # a golden missing or not in the shape it should have
            chk.failures.append(f"golden/{name}: cannot check it: {type(e).__name__}: {e}")
    for f in chk.failures:
        print(f, file=sys.stderr)
    print(f"recount: {len(cases)} goldens, {len(chk.failures)} mismatches")
    return 1 if chk.failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
