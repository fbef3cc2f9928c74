"""Reads `awf-shim-trace summary --format markdown` back, by the rules GitHub's renderer (cmark-gfm)
applies, for recount.py (the facts it states) and check_markdown.py (its structure, its escaping).

The tool writes: "### awf-shim", a blank line, "**Verdict:** ...", then sections "#### TITLE", a
blank line and a GFM table (or a line "none ..."), maybe a line "… N more ..." after it. Every value
from the trace is a code span; in a table its '|' are written '\\|'.
"""
import re

HEADING = "### awf-shim"
VERDICT = "**Verdict:** "
DELIMITER_CELL = re.compile(r"---:?")


def split_row(line):
    """The raw cells of a table row "| a | b |", or None if the line is not one. A '|' preceded by
    a backslash is part of a cell (cmark-gfm: whatever precedes that backslash)."""
    if not (line.startswith("| ") and line.endswith(" |")):
        return None
    cells, start = [], 1
    for i in range(1, len(line)):
        if line[i] == "|" and line[i - 1] != "\\":
            cells.append(line[start:i].strip())
            start = i + 1
    return cells


def spans(text, in_table):
    """text split into ("text", s) and ("code", content) parts, as CommonMark reads code spans: a
    run of n backticks opens one, the next run of exactly n closes it; one space is stripped from
    each end of content that has a space at both and is not all spaces. In a table cell "\\|" is
    first made "|" (cmark-gfm does so before it parses the cell's inlines)."""
    if in_table:
        text = text.replace("\\|", "|")
    parts, i, plain = [], 0, ""
    while i < len(text):
        if text[i] != "`":
            plain += text[i]
            i += 1
            continue
        n = len(re.match(r"`+", text[i:]).group(0))
        close = next((m for m in re.finditer(r"`+", text[i + n:]) if len(m.group(0)) == n), None)
        if close is None:  # no closer: the backticks are text
            plain += text[i:i + n]
            i += n
            continue
        content = text[i + n:i + n + close.start()]
        if len(content) >= 2 and content[0] == " " and content[-1] == " " and content.strip(" "):
            content = content[1:-1]
        if plain:
            parts.append(("text", plain))
            plain = ""
        parts.append(("code", content))
        i += n + close.end()
    if plain:
        parts.append(("text", plain))
    return parts


def decode(text, in_table=True):
    """What a reader sees: the code spans' content and the text around them."""
    return "".join(s for _, s in spans(text, in_table))


def outside_code(text, in_table=True):
    """The text outside code spans: the tool's own words, where markdown is live."""
    return "".join(s for kind, s in spans(text, in_table) if kind == "text")


def outcomes(cell):
    """A host's "tunnels by outcome" cell, "`LABEL` ×N, `LABEL` ×N" -> {LABEL: N}."""
    out, parts = {}, spans(cell, True)
    for (kind, label), (_, after) in zip(parts[0::2], parts[1::2]):
        m = re.fullmatch(r" ×(\d+)(, )?", after)
        if kind != "code" or not m:
            raise ValueError(f"not an outcome list: {cell!r}")
        out[label] = int(m.group(1))
    if len(parts) % 2:
        raise ValueError(f"not an outcome list: {cell!r}")
    return out


def parse(text):
    """{"verdict": the verdict's markdown, "sections": {title: {"table": [header, delimiter, rows…]
    as raw cells, or None, "lines": the section's other lines}}}. ValueError if the text is not in
    the shape the tool writes."""
    lines = text.split("\n")
    if lines[-1] != "":
        raise ValueError("does not end with a newline")
    lines.pop()
    if lines[:2] != [HEADING, ""] or len(lines) < 3 or not lines[2].startswith(VERDICT):
        raise ValueError(f"does not start with {HEADING!r}, a blank line and {VERDICT!r}")
    out = {"verdict": lines[2][len(VERDICT):], "sections": {}}
    section = None
    for n, line in enumerate(lines[3:], 4):
        if line.startswith("#### "):
            section = out["sections"].setdefault(line[5:], {"table": None, "lines": []})
        elif line == "":
            continue
        elif section is None:
            raise ValueError(f"line {n}: outside a section: {line!r}")
        elif line.startswith("|"):
            cells = split_row(line)
            if cells is None:
                raise ValueError(f"line {n}: not a table row: {line!r}")
            if section["table"] is None:
                section["table"] = []
            elif section["lines"]:
                raise ValueError(f"line {n}: a table row after the table: {line!r}")
            section["table"].append(cells)
        else:
            section["lines"].append(line)
    return out


def rows(section):
    """A section's table rows (header and delimiter aside), [] for a section without a table."""
    return (section["table"] or [None, None])[2:]
