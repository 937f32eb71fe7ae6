"""Utterance and recording ids: the one rule every tool applies before a key names a file.

A key becomes `<output_dir>/<key>.<ext>` exactly, so it must not leave the folder ('/', a leading '.'
as in '..' or a hidden temp file), must not split a Kaldi line (white space) and must not hold control
characters. Dots inside a key are fine (`sp0.9-s08_001`, `utt.v2`): output names are built by appending
the extension, never with `Path.with_suffix`.
"""
from __future__ import annotations

RULE = "no '/', no leading '.', no white space, no control characters, not empty"


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a file, or None when it can."""
    if not key:
        return "empty key"
    if "/" in key or "\\" in key:
        return f"key {key!r} holds a path separator"
    if key.startswith("."):
        return f"key {key!r} starts with '.'"
    if any(c.isspace() for c in key):
        return f"key {key!r} holds white space"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return f"key {key!r} holds a control character"
    return None


def check_key(key: str, where: str = "") -> str:
    """Return `key` unchanged, or raise ValueError naming `where` (file:line) and the rule."""
    problem = key_problem(key)
    if problem is not None:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}invalid id: {problem} (ids must have {RULE})")
    return key


def output_name(key: str, ext: str) -> str:
    """`<key>.<ext>` for a valid key: the only way a key becomes a file name."""
    check_key(key)
    return f"{key}.{ext.lstrip('.')}"
