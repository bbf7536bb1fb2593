#!/usr/bin/env python3
"""Every promise in the docs names a test, and every test the docs name exists.

Checked in README.md and docs/*.md (run by `make test`, target `promises`):

1. A reference `path.rs::name` (in backticks) needs the file and a `fn name(` in it; a check
   script's `scripts/x.py::name` needs a `def name(` in it.
2. Any backticked `*.rs` path needs the file (from the repository root, or under shared/src/).
3. A backticked bare identifier that reads like a test name (snake_case, five words or more)
   needs a `fn <name>(` somewhere in the workspace's Rust sources.
4. Each row of a table under a heading that contains "guarantees" (the delivery guarantees in
   docs/RELIABILITY.md, inv.integrator()'s in docs/integrator-api.md) names at least one test
   in a `tests` column: a promise without a test fails.
5. A module-path reference `a::b::test_name` (last segment reads like a test name) needs a
   `fn test_name(` in the workspace, and its first segment must be a module or test file.
6. In README.md and every hand-written page of docs/ (all but the generated BENCHMARKS.md and
   the hand-run json-candidates.md), a paragraph, list item or table row that makes a promise
   (never, always, exactly once, at most, lost, twice, refused, bounded, ...) names at least
   one test (`file.rs::name` or `module::path::name`) in the same block. A block is exempt
   only when it says why on its own line: `<!-- promise-exempt: reason -->` just above.
7. README.md stays within README_MAX_LINES lines: it is the short tour, the details live in
   docs/ (one page per audience).

Exit status 1 with one line per problem.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCE_DIRS = ["shared", "functions", "tests", "bench", "fuzz"]

TICKED = re.compile(r"`([^`\n]+)`")
REF = re.compile(r"^([\w./-]+\.(?:rs|py))::(\w+)$")
TEST_LIKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+){4,}$")
MODREF = re.compile(r"^((?:[a-z_][a-z0-9_]*::)+)([a-z][a-z0-9]*(?:_[a-z0-9]+){3,})$")
PROMISE = re.compile(
    r"\b(never|always|guarantee[sd]?|exactly once|at most once|at least once|not lost|"
    r"nothing is lost|loses nothing|lose[sd]? nothing|twice|must not|refused|rejected|"
    r"bounded|cannot)\b",
    re.I,
)
# Not audited by rule 6: written by `make bench`, or a hand-run record of measurements.
NOT_AUDITED = {"docs/BENCHMARKS.md", "docs/json-candidates.md"}
README_MAX_LINES = 200
EXEMPT = "<!-- promise-exempt:"


def module_roots() -> set[str]:
    roots = set()
    for base in (ROOT / "shared" / "src", ROOT / "functions" / "src", ROOT / "tests" / "tests",
                 ROOT / "tests" / "src", ROOT / "bench" / "src"):
        if base.is_dir():
            for p in base.rglob("*"):
                roots.add(p.stem if p.suffix == ".rs" else p.name)
    return roots | {"tests", "functions", "integrator_lambda", "bench"}


def names_a_test(text: str) -> bool:
    for t in TICKED.findall(text):
        t = t.strip()
        if REF.match(t) or MODREF.match(t) or TEST_LIKE.match(t):
            return True  # rule 3 / 5 check that the named fn exists
    return False


def outside_code(lines: list[str]):
    """(line number, line) of each line outside ``` code fences (the fence lines left out too)."""
    in_code = False
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            yield no, line


def blocks(lines: list[str]):
    """Paragraphs, list items and table rows outside code fences: (first line no, text, exempt)."""
    cur: list[str] = []
    start = 0
    exempt = False
    pending_exempt = False
    out = []
    for no, line in outside_code(lines):
        new_block = (
            not line.strip()
            or line.startswith("#")
            or line.startswith("|")
            or re.match(r"^\s*(?:[-*]|\d+\.)\s", line) is not None
            or line.startswith(EXEMPT)
        )
        if new_block:
            if cur:
                out.append((start, " ".join(cur), exempt))
            cur, exempt = [], False
            if line.startswith(EXEMPT):
                pending_exempt = True
                continue
            if line.strip() and not line.startswith("#"):
                cur, start, exempt, pending_exempt = [line], no, pending_exempt, False
            elif line.startswith("#"):
                pending_exempt = False
            continue
        if not cur:
            start, exempt, pending_exempt = no, pending_exempt, False
        cur.append(line)
    if cur:
        out.append((start, " ".join(cur), exempt))
    return out


def rust_sources() -> list[pathlib.Path]:
    out = []
    for d in SOURCE_DIRS:
        for p in (ROOT / d).rglob("*.rs"):
            if "target" not in p.relative_to(ROOT).parts:
                out.append(p)
    return out


def resolve(path: str) -> pathlib.Path | None:
    for base in (ROOT, ROOT / "shared" / "src"):
        p = base / path
        if p.is_file():
            return p
    return None


def fn_names(text: str) -> set[str]:
    return set(re.findall(r"\bfn\s+(\w+)\s*[<(]", text)) | set(re.findall(r"^def\s+(\w+)\(", text, re.M))


def check(doc: pathlib.Path, all_fns: set[str], problems: list[str]) -> None:
    rel = doc.relative_to(ROOT)
    lines = doc.read_text(encoding="utf-8").splitlines()
    heading = ""
    table_header: list[str] | None = None
    for no, line in outside_code(lines):
        if line.startswith("#"):
            heading = line.lower()
            table_header = None
        for tick in TICKED.findall(line):
            tick = tick.strip()
            m = REF.match(tick)
            if m:
                path, name = m.groups()
                p = resolve(path)
                if p is None:
                    problems.append(f"{rel}:{no}: `{tick}`: no file {path}")
                elif name not in fn_names(p.read_text(encoding="utf-8")):
                    problems.append(f"{rel}:{no}: `{tick}`: no fn {name} in {path}")
                continue
            if tick.endswith(".rs") and "/" in tick and not set(tick) & set(" *<>"):
                if resolve(tick) is None:
                    problems.append(f"{rel}:{no}: `{tick}`: no such file")
                continue
            mm = MODREF.match(tick)
            if mm:
                first = mm.group(1).split("::")[0]
                if mm.group(2) not in all_fns:
                    problems.append(f"{rel}:{no}: `{tick}`: no fn {mm.group(2)} in the workspace")
                elif first not in ROOTS:
                    problems.append(f"{rel}:{no}: `{tick}`: no module or test file {first}")
                continue
            if TEST_LIKE.match(tick) and tick not in all_fns:
                problems.append(f"{rel}:{no}: `{tick}`: no fn of that name in the workspace")
        # Promise tables: a row without a test.
        if "guarantees" in heading and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if table_header is None:
                table_header = [c.lower() for c in cells]
                continue
            if set(line) <= set("|-: "):
                continue
            if "tests" not in table_header:
                problems.append(f"{rel}:{no}: a guarantees table without a `tests` column")
                continue
            cell = cells[table_header.index("tests")] if len(cells) == len(table_header) else ""
            if not any(REF.match(t.strip()) for t in TICKED.findall(cell)):
                problems.append(f"{rel}:{no}: a promise that names no test (`file.rs::test`)")
    if str(rel) not in NOT_AUDITED:
        intro_proven = False  # a table's rows may rest on the paragraph just above it
        prev_end = -1
        for no, text, exempt in blocks(lines):
            is_row = text.startswith("|")
            if is_row and set(text) <= set("|-: "):
                continue
            nxt = lines[no] if no < len(lines) else ""
            if is_row and nxt.startswith("|") and set(nxt.strip()) <= set("|-: "):
                continue  # a header row
            if not is_row:
                intro_proven = names_a_test(text) or exempt
            m = PROMISE.search(text)
            if is_row and intro_proven:
                continue
            if m and not exempt and not names_a_test(text):
                problems.append(
                    f"{rel}:{no}: promises ({m.group(0)!r}) but names no test: {text[:90]}..."
                )


ROOTS: set[str] = set()


def main() -> int:
    ROOTS.update(module_roots())
    all_fns: set[str] = set()
    for p in rust_sources():
        all_fns |= fn_names(p.read_text(encoding="utf-8", errors="replace"))
    problems: list[str] = []
    for doc in DOCS:
        check(doc, all_fns, problems)
    readme_lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    if readme_lines > README_MAX_LINES:
        problems.append(
            f"README.md: {readme_lines} lines, over {README_MAX_LINES}: move the details to docs/"
        )
    for p in problems:
        print(p)
    refs = sum(
        len([t for t in TICKED.findall(d.read_text(encoding="utf-8")) if REF.match(t.strip())])
        for d in DOCS
    )
    if problems:
        print(f"promises: {len(problems)} problem(s)")
        return 1
    print(f"promises: {len(DOCS)} documents, {refs} named tests, all found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
