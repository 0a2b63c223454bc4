#!/usr/bin/env python3
"""The shape of the Swift sources: file counts, the longest files and the longest functions.

    scripts/code-shape.py [REV] [--top N]

Reads Sources/**.swift at git revision REV (default: the working tree). A function is a `func`,
`init`, `deinit`, `subscript` or accessor-less closure-free declaration whose body starts at the
first `{` after its name; its length is the number of lines from the declaration to the matching
`}`. Braces inside string literals (also multi-line and raw ones) and comments are not counted.
Used for the closing note of issue 12 (before and after the RoseBuild move).
"""

import argparse
import collections
import os
import re
import subprocess
import sys

DECLARATION = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|open|static|class|"
    r"final|override|mutating|nonmutating|convenience|required|nonisolated|@inlinable|"
    r"@discardableResult)\s+)*(func\s+[^\s(<]+|init[?!]?\s*[(<]|deinit\b|subscript\s*[(<])"
)


def source_files(rev):
    """(path, text) of every Swift file under Sources/ at `rev` (None: the working tree)."""
    if rev is None:
        for root, _, names in os.walk("Sources"):
            for name in sorted(names):
                if name.endswith(".swift"):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as f:
                        yield path, f.read()
        return
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "Sources"],
        check=True, capture_output=True, text=True).stdout.split()
    for path in sorted(p for p in listing if p.endswith(".swift")):
        text = subprocess.run(["git", "show", f"{rev}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        yield path, text


def code_only(text):
    """`text` with string literals and comments blanked (newlines kept), so braces are code."""
    out = []
    i, n = 0, len(text)
    block_depth = 0
    while i < n:
        c = text[i]
        if block_depth:
            if text.startswith("*/", i):
                block_depth -= 1
                i += 2
            elif text.startswith("/*", i):
                block_depth += 1
                i += 2
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            block_depth = 1
            i += 2
            continue
        m = re.match(r'(#*)("""|")', text[i:])
        if m:
            hashes, quote = m.group(1), m.group(2)
            close = quote + hashes
            j = i + len(m.group(0))
            # Interpolations `\(...)` hold code, but never an unbalanced brace in this codebase.
            while j < n and not text.startswith(close, j):
                if text[j] == "\\" and not hashes:
                    j += 2
                    continue
                if quote == '"' and text[j] == "\n":
                    break
                j += 1
            segment = text[i:j + len(close)]
            out.append("".join("\n" if ch == "\n" else " " for ch in segment))
            i = j + len(close)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def functions(path, text):
    """(lines, name, path, first line) of each function body in `text`."""
    code = code_only(text).split("\n")
    found = []
    for index, line in enumerate(code):
        m = DECLARATION.match(line)
        if not m:
            continue
        name = m.group(1).replace("func ", "").rstrip("(< ")
        depth, started, end = 0, False, None
        for k in range(index, len(code)):
            for ch in code[k]:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
                    if started and depth == 0:
                        end = k
                        break
            if end is not None:
                break
            # A protocol requirement: no body before the next declaration.
            if not started and k > index and DECLARATION.match(code[k]):
                break
        if end is not None:
            found.append((end - index + 1, name, path, index + 1))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rev", nargs="?", help="git revision (default: the working tree)")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    files = list(source_files(args.rev))
    per_module = collections.Counter(path.split("/")[1] for path, _ in files)
    lines = sorted(((t.count("\n"), p) for p, t in files), reverse=True)
    funcs = sorted((f for p, t in files for f in functions(p, t)), reverse=True)
    print(f"revision: {args.rev or 'working tree'}")
    print(f"Swift files under Sources: {len(files)}, lines: {sum(n for n, _ in lines)}")
    print("files per module: " + ", ".join(f"{m} {c}" for m, c in sorted(per_module.items())))
    print(f"longest files:")
    for n, p in lines[:args.top]:
        print(f"  {n:5} {p}")
    print(f"longest functions:")
    for n, name, p, first in funcs[:args.top]:
        print(f"  {n:5} {name} ({p}:{first})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
