"""Console entry points (thin: parse arguments, call the library)."""
from __future__ import annotations

import sys


def report_failures(prog: str, failures: list[str], what: str) -> int:
    """List a batch job's failures on stderr, one line each, then their count; the exit status."""
    for f in failures:
        print(f"{prog}: failed: {f}", file=sys.stderr)
    if failures:
        print(f"{prog}: {len(failures)} {what}(s) failed", file=sys.stderr)
    return 1 if failures else 0
