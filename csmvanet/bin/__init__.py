"""Console entry points (thin: parse arguments, call the library)."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable


def run_interruptible(prog: str, main: Callable[[], int]) -> int:
    """Run a batch entry point's ``main``; SIGTERM/SIGINT: one line saying what was finished (no
    traceback), temporary files removed on the way out, exit status 128 + signal number."""
    from csmvanet.base.interrupts import Interrupted, interrupted_line, stop_on_signals

    try:
        with stop_on_signals():
            return main()
    except Interrupted as e:
        print(interrupted_line(prog, e), file=sys.stderr)
        return e.status


def report_failures(prog: str, failures: list[str], what: str) -> int:
    """List a batch job's failures on stderr, one line each, then their count; the exit status."""
    for f in failures:
        print(f"{prog}: failed: {f}", file=sys.stderr)
    if failures:
        print(f"{prog}: {len(failures)} {what}(s) failed", file=sys.stderr)
    return 1 if failures else 0


def write_one_file(prog: str, out: str, write: Callable[[], dict]) -> int:
    """Run ``write()`` (which writes the file ``out`` and returns a description of it): its warnings
    become ``prog: warning:`` lines, a bad model/option/file one ``prog: error:`` line (exit 1);
    done, ``prog: wrote OUT`` and the description as JSON. The exit status."""
    import json
    import warnings

    from csmvanet.base.errors import EnhanceError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info = write()
        for w in caught:
            print(f"{prog}: warning: {w.message}", file=sys.stderr)
    except (EnhanceError, ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    print(f"{prog}: wrote {out}")
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def seconds_arg(positive: bool):
    """argparse type: a finite number of seconds, above 0 (``positive``) or from 0."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise argparse.ArgumentTypeError(f"expected a {'positive' if positive else 'non-negative'} "
                                             f"finite number of seconds, got {text!r}")
        return v
    return parse
