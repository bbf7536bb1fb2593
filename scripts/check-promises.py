#!/usr/bin/env python3
"""Every promise in the docs names a test, and every test the docs name exists.

Checked in README.md and docs/*.md (run by `make test`, target `promises`):

1. A reference `path.rs::name` (in backticks) needs the file and a `fn name(` in it.
2. Any backticked `*.rs` path needs the file (from the repository root, or under shared/src/).
3. A backticked bare identifier that reads like a test name (snake_case, five words or more)
   needs a `fn <name>(` somewhere in the workspace's Rust sources.
4. Each row of a table under a heading that contains "guarantees" (the README's delivery
   guarantees) names at least one test in a `tests` column: a promise without a test fails.

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
REF = re.compile(r"^([\w./-]+\.rs)::(\w+)$")
TEST_LIKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+){4,}$")


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
    return set(re.findall(r"\bfn\s+(\w+)\s*[<(]", text))


def check(doc: pathlib.Path, all_fns: set[str], problems: list[str]) -> None:
    rel = doc.relative_to(ROOT)
    lines = doc.read_text(encoding="utf-8").splitlines()
    in_code = False
    heading = ""
    table_header: list[str] | None = None
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
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


def main() -> int:
    all_fns: set[str] = set()
    for p in rust_sources():
        all_fns |= fn_names(p.read_text(encoding="utf-8", errors="replace"))
    problems: list[str] = []
    for doc in DOCS:
        check(doc, all_fns, problems)
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
