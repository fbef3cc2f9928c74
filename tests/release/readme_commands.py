#!/usr/bin/env python3
"""Every command README.md gives is run by a test, so none can rot unnoticed.

    readme_commands.py [--junit FILE] [DOCUMENT...]   (default: README.md, packaging/README.md)

Fenced blocks. Each one is labelled: `text` (and `json`, `jsonl`) for output and data; `sh`,
`bash`, `shell`, `console`, `dockerfile` or `yaml` for what a reader runs. A block of commands has,
on the line right above its opening fence, the runner that runs it:

    <!-- tested-by: tests/integration/test_deploy.py#entrypoint -->   the test extracts the block
                                                                      by its id and runs it: the
                                                                      file must exist and name the
                                                                      id as a string ("entrypoint")
    <!-- tested-by: scripts/test -->                                  a script runs the same
                                                                      commands: each one of the
                                                                      block must appear in it,
                                                                      verbatim, outside comments

    <!-- tested-by: long-suite -->                                    a long suite behind a flag,
                                                                      too long for every run: only
                                                                      the commands of LONG_SUITES,
                                                                      whose result and time README
                                                                      must report

(several runners separated by commas: each command must be run by one of them). Ids are unique.
Tests get a block's text with block(ID), the same parse as this check.

Inline commands. A code span in the prose that is a command — `scripts/NAME …` for a script of
scripts/ (not scripts/lib/), or `meson`, `ninja`, `sudo`, `awf`, `awf-shim-run`, `awf-shim-trace`,
`docker`, `tar`, `sha256sum`, `export`, or a path into `/opt/awf-shim/` or `build/`, with
arguments — must be one a tested block runs: some command of such a block starts with it (up to
the first synopsis mark: `…`, `[`, `|`, `<`). Better still, move it into a marked block.

Exit status 0 when every check passes, 1 otherwise; each block, each distinct inline command and
the marker syntax are one test case each in the JUnit report."""
import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")

COMMAND_LANGS = {"sh", "bash", "shell", "console", "dockerfile", "yaml"}
TEXT_LANGS = {"text", "json", "jsonl"}
TOOLS = {"meson", "ninja", "sudo", "awf", "awf-shim-run", "awf-shim-trace", "docker", "tar", "sha256sum", "export"}
# Long suites behind flags (the developers' guide: "report their results and times in README"),
# run by hand, not by every scripts/test: the command, and the words README must hold beside it.
LONG_SUITES = {
    "scripts/test --arch aarch64": "the whole arm64 suite under qemu-user",
}
MARKER = re.compile(r"^<!--\s*tested-by:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([^\s`]*)")
SYNOPSIS = re.compile(r"…|\[|\||<")


@dataclass
class Runner:
    path: str           # relative to the repository
    block_id: str = ""  # empty: the file runs the block's commands itself


@dataclass
class Block:
    line: int           # of the opening fence, 1-based
    lang: str
    body: str
    runners: list = field(default_factory=list)
    marker_line: int = 0


@dataclass
class Inline:
    line: int
    text: str


def parse(text):
    """(blocks, inline code spans outside blocks, stray markers as (line, text))."""
    blocks, spans, stray = [], [], []
    lines = text.split("\n")
    pending = None  # (line, runners) of a marker waiting for its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            close = fence.group(1)
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(close):
                body.append(lines[i])
                i += 1
            block = Block(line=i - len(body), lang=fence.group(2).lower(), body="\n".join(body) + "\n")
            if pending:
                block.marker_line, block.runners = pending
                pending = None
            blocks.append(block)
            i += 1
            continue
        if pending:
            stray.append((pending[0], "a tested-by marker not right above a fenced block"))
            pending = None
        marker = MARKER.match(line.strip())
        if marker:
            pending = (i + 1, parse_runners(marker.group(1)))
        elif "tested-by" in line:
            stray.append((i + 1, f"not a marker of the form <!-- tested-by: PATH[#ID][, …] -->: {line.strip()}"))
        else:
            spans += [Inline(i + 1, m.group(1).strip()) for m in re.finditer(r"(?<!`)`([^`\n]+)`(?!`)", line)]
        i += 1
    if pending:
        stray.append((pending[0], "a tested-by marker at the end of the file"))
    # Spans that wrap onto the next line: join each paragraph's lines and find them again.
    return blocks, spans + wrapped_spans(lines, blocks), stray


def wrapped_spans(lines, blocks):
    """Code spans broken across two lines of a paragraph (`meson setup build\n--buildtype=…`)."""
    inside = set()
    for b in blocks:
        inside.update(range(b.line, b.line + b.body.count("\n") + 2))
    out = []
    for n in range(len(lines) - 1):
        if n + 1 in inside or n + 2 in inside:
            continue
        head, tail = lines[n], lines[n + 1]
        if head.count("`") % 2 == 1:
            start = head.rindex("`")
            end = tail.find("`")
            if end >= 0:
                out.append(Inline(n + 1, (head[start + 1:] + " " + tail[:end]).strip()))
    return out


def parse_runners(spec):
    runners = []
    for part in spec.split(","):
        path, _, block_id = part.strip().partition("#")
        runners.append(Runner(path.strip(), block_id.strip()))
    return runners


def block(block_id, readme=README):
    """The text of README's block whose tested-by marker names `block_id` (exactly one)."""
    with open(readme, encoding="utf-8") as f:
        blocks, _, _ = parse(f.read())
    found = [b for b in blocks if any(r.block_id == block_id for r in b.runners)]
    if len(found) != 1:
        raise AssertionError(f"{readme}: {len(found)} blocks are marked with the id {block_id!r} (want exactly 1)")
    return found[0].body


def commands(block_):
    """The simple commands of a block of commands, comments and prompts dropped: shell lines
    (continuations joined, split at && || ; |), a Dockerfile's RUN commands, a workflow's run:
    scripts."""
    text = block_.body
    if block_.lang == "dockerfile":
        text = "\n".join(re.sub(r"^RUN\s+", "", ins) for ins in dockerfile_instructions(text) if ins.startswith("RUN "))
    elif block_.lang == "yaml":
        text = "\n".join(workflow_run_scripts(text))
    out = []
    for line in re.sub(r"\\\n\s*", " ", text).split("\n"):
        line = re.sub(r"^\s*\$\s+", "", line) if block_.lang == "console" else line
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        out += [c.strip() for c in re.split(r"&&|\|\||;|\|", line) if c.strip()]
    return out


def dockerfile_instructions(text):
    """A Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#")))
    return [re.sub(r"\s+", " ", l).strip() for l in joined.split("\n") if l.strip()]


def workflow_run_scripts(text):
    """The `run:` scripts of a list of GitHub Actions steps (block scalars or single lines)."""
    scripts, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        if m.group(2) not in ("|", "|-", ">", ">-"):
            scripts.append(m.group(2))
            continue
        indent, body = None, []
        while i < len(lines) and (not lines[i].strip() or indent is None or lines[i].startswith(indent)):
            if lines[i].strip():
                if indent is None:
                    indent = re.match(r"^\s*", lines[i]).group(0)
                    if len(indent) <= len(m.group(1)):
                        break
                body.append(lines[i][len(indent):])
            i += 1
        scripts.append("\n".join(body))
    return scripts


def inline_command(span):
    """The runnable head of an inline code span that is a command, else None."""
    words = span.split()
    if not words:
        return None
    first = words[0]
    script = re.fullmatch(r"scripts/([A-Za-z0-9_.-]+)", first)
    is_command = (script and os.path.isfile(os.path.join(ROOT, first))) or \
        (len(words) > 1 and (first in TOOLS or first.startswith(("/opt/awf-shim/", "build/"))))
    if not is_command:
        return None
    head = SYNOPSIS.split(span, 1)[0].strip()
    return re.sub(r"\s+", " ", head)


def code_lines(path):
    """A runner file's text with its comment lines dropped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return "\n".join(l for l in f.read().split("\n") if not l.lstrip().startswith("#"))


def check(readme=README):
    """[(case name, failure message or None)] of every check."""
    with open(readme, encoding="utf-8") as f:
        blocks, spans, stray = parse(f.read())
    name = os.path.relpath(readme, ROOT)
    cases = [("markers", "\n".join(f"{name}:{n}: {why}" for n, why in stray) or None)]
    ids = {}
    for b in blocks:
        for r in b.runners:
            if r.block_id:
                ids.setdefault(r.block_id, []).append(b.line)
    tested = []  # the commands that a runner that checks out does run
    marked = {}  # every command of a marked block: the line of its block
    for b in blocks:
        where = f"{name}:{b.line}"
        problems = []
        if not b.lang:
            problems.append("a fenced block without a language: label it (text for output, sh for commands)")
        elif b.lang not in COMMAND_LANGS | TEXT_LANGS:
            problems.append(f"unknown block language {b.lang!r} (commands: {', '.join(sorted(COMMAND_LANGS))}; "
                            f"output and data: {', '.join(sorted(TEXT_LANGS))})")
        elif b.lang in COMMAND_LANGS and not b.runners:
            problems.append("a block of commands with no <!-- tested-by: PATH[#ID] --> right above it")
        cmds = commands(b) if b.lang in COMMAND_LANGS else []
        if b.lang in COMMAND_LANGS and b.runners and not cmds:
            problems.append("a block of commands that holds no command")
        unrun = list(cmds)
        if b.runners:
            marked.update({c: b.line for c in cmds})
        for r in b.runners:
            path = os.path.join(ROOT, r.path)
            if r.path == "long-suite":
                unrun = [c for c in unrun if c not in LONG_SUITES]
                # In the prose, not in the block's own comment (which would always match).
                with open(readme, encoding="utf-8") as f:
                    prose = f.read()
                for o in blocks:
                    prose = prose.replace(o.body, "")
                problems += [f"the long suite `{c}`: README must report it as {LONG_SUITES[c]!r}, with its result "
                             "and time" for c in cmds if c in LONG_SUITES and LONG_SUITES[c].lower() not in prose.lower()]
                continue
            if not r.path or not os.path.isfile(path):
                problems.append(f"tested-by {r.path!r}: no such file")
                continue
            if r.block_id:
                if len(ids[r.block_id]) > 1:
                    problems.append(f"the id {r.block_id!r} marks {len(ids[r.block_id])} blocks (lines "
                                    f"{', '.join(map(str, ids[r.block_id]))})")
                with open(path, encoding="utf-8", errors="replace") as f:
                    if not re.search(rf"""(["']){re.escape(r.block_id)}\1""", f.read()):
                        problems.append(f"{r.path} does not name the block {r.block_id!r} (as a string), so it "
                                        "cannot be extracting it")
                if os.path.realpath(readme) != os.path.realpath(README):
                    # Another document (the tarball's README) may repeat README.md's tested block,
                    # or some of its commands, but nothing the test does not run.
                    with open(README, encoding="utf-8") as f:
                        source = [o for o in parse(f.read())[0] if any(q.block_id == r.block_id for q in o.runners)]
                    extra = [c for c in cmds if not source or c not in commands(source[0])]
                    if len(source) != 1:
                        problems.append(f"README.md has no block {r.block_id!r} for this one to repeat")
                    elif extra:
                        problems.append(f"not in README.md's block {r.block_id!r}, which {r.path} runs: "
                                        + "; ".join(f"`{c}`" for c in extra))
                unrun = []
            else:
                text = code_lines(path)
                unrun = [c for c in unrun if c not in text]
        if b.runners and unrun:
            problems.append(f"not run by {', '.join(r.path for r in b.runners)}: " + "; ".join(f"`{c}`" for c in unrun))
        if b.lang in COMMAND_LANGS or b.runners:
            if b.runners and not [p for p in problems if not p.startswith("not run by")]:
                tested += [c for c in cmds if c not in unrun]  # each command its runner does run
            label = f"block {b.runners[0].block_id or b.runners[0].path if b.runners else '(unmarked)'} at line {b.line}"
            cases.append((label, "\n".join(f"{where}: {p}" for p in problems) or None))
        elif problems:
            cases.append((f"block at line {b.line}", "\n".join(f"{where}: {p}" for p in problems)))
    heads = {}
    for s in spans:
        head = inline_command(s.text)
        if head:
            heads.setdefault(head, []).append(s.line)
    for head, at in sorted(heads.items()):
        def runs(c):
            return c == head or c.startswith(head + " ")
        where = ", ".join(f"{name}:{n}" for n in sorted(set(at)))
        if any(runs(c) for c in tested):
            message = None
        elif any(runs(c) for c in marked):
            line = next(n for c, n in marked.items() if runs(c))
            message = f"{where}: `{head}` is run by nothing: its block ({name}:{line}) names a runner that does not run it"
        else:
            message = f"{where}: `{head}` is run by no tested block (move it into a marked block, or drop it)"
        cases.append((f"inline `{head}`", message))
    return cases


def write_junit(path, cases):
    suite = ET.Element("testsuite", name="readme_commands", tests=str(len(cases)),
                       failures=str(sum(1 for _, m in cases if m)))
    for case, message in cases:
        tc = ET.SubElement(suite, "testcase", classname="readme_commands", name=case)
        if message:
            ET.SubElement(tc, "failure", message=message.splitlines()[0]).text = message
    ET.ElementTree(suite).write(path, encoding="unicode")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--junit")
    ap.add_argument("readme", nargs="*", default=[README, os.path.join(ROOT, "packaging", "README.md")],
                    help="the documents to check (default: README.md and the tarball's packaging/README.md)")
    args = ap.parse_args()
    cases = []
    for readme in args.readme:
        prefix = "" if os.path.realpath(readme) == os.path.realpath(README) else os.path.relpath(readme, ROOT) + ": "
        cases += [(prefix + c, m) for c, m in check(readme)]
    failed = [(c, m) for c, m in cases if m]
    for case, message in cases:
        print(f"{'FAIL' if message else 'ok  '} {case}")
    for case, message in failed:
        print(f"\n{case}:\n  " + message.replace("\n", "\n  "))
    print(f"\nreadme_commands: {len(cases) - len(failed)} passed, {len(failed)} failed")
    if args.junit:
        write_junit(args.junit, cases)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
