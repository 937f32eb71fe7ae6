"""YAML configs with command-line style overrides (``--optim.lr 1e-4``)."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from csmvanet.base.errors import ConfigError


def yaml_problem(where, e: yaml.YAMLError, text: str | None = None) -> str:
    """One line for a YAML syntax error: ``WHERE:LINE:COLUMN: not valid YAML: PROBLEM (CONTEXT from
    line L, column C); line LINE: 'ITS TEXT'`` (``text``: the document, to quote the line)."""
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is None or not problem:   # a reader error (bad bytes, ...): its own words, on one line
        return f"{where}: not valid YAML: {' '.join(str(e).split())}"
    msg = f"{where}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context:
        at = f" from line {cmark.line + 1}, column {cmark.column + 1}" if cmark is not None else ""
        msg += f" ({context}{at})"
    lines = (text if text is not None else getattr(mark, "buffer", None) or "").split("\n")
    if 0 <= mark.line < len(lines) and lines[mark.line].strip():
        line = lines[mark.line].rstrip("\0")
        msg += f"; line {mark.line + 1}: {line[:60] + '...' if len(line) > 60 else line!r}"
    return msg


def parse_yaml(text: str, where) -> object:
    """``yaml.safe_load(text)``; a syntax error is a :class:`ConfigError` of one line naming ``where``,
    the line, the column and the problem (:func:`yaml_problem`)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(where, e, text)) from None


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config ({getattr(e, 'strerror', None) or e})") from None
    cfg = parse_yaml(text, path)
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: the top level must be a mapping, got {type(cfg).__name__}")
    return cfg


def set_by_path(cfg: dict, dotted: str, value) -> None:
    """Set ``cfg['a']['b'] = value`` for ``dotted == 'a.b'``, creating mappings as needed."""
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        elif not isinstance(nxt, dict):
            raise ValueError(f"override {dotted!r}: {k!r} is not a mapping")
        node = nxt
    node[keys[-1]] = value


def unknown_sections(names, known) -> str | None:
    """``unknown config section(s) 'x'; known sections: a, b`` when ``names`` holds one not in ``known``."""
    unknown = [str(n) for n in names if n not in known]
    if not unknown:
        return None
    return (f"unknown config section{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known sections: {', '.join(sorted(known))}")


def check_sections(cfg: dict, known, where, provenance=()) -> None:
    """:class:`ConfigError` naming ``where`` when ``cfg`` has a top-level key neither in ``known`` nor in
    ``provenance`` (keys the project writes itself, not listed to users), listing the known sections."""
    problem = unknown_sections([k for k in cfg if k not in provenance], known)
    if problem:
        raise ConfigError(f"{where}: {problem}")


def apply_overrides(cfg: dict, overrides: list[str], sections=None) -> dict:
    """Apply ``['--a.b', '3', '--c', 'x']`` (or ``a.b=3``) to a copy of cfg; values parsed as YAML.
    ``sections``: the valid top-level keys; an override of another fails naming it (ConfigError)."""
    cfg = copy.deepcopy(cfg)
    i = 0
    while i < len(overrides):
        tok = overrides[i]
        if tok.startswith("--") and "=" in tok:
            key, raw = tok[2:].split("=", 1)
            i += 1
        elif tok.startswith("--"):
            if i + 1 >= len(overrides):
                raise ValueError(f"override {tok} has no value")
            key, raw = tok[2:], overrides[i + 1]
            i += 2
        elif "=" in tok:
            key, raw = tok.split("=", 1)
            i += 1
        else:
            raise ValueError(f"cannot parse override {tok!r}: use --key value or key=value")
        problem = None if sections is None else unknown_sections([key.replace("-", "_").split(".")[0]], sections)
        if problem:
            raise ConfigError(f"override --{key}: {problem}")
        set_by_path(cfg, key.replace("-", "_"), parse_yaml(raw, f"override --{key}") if raw != "" else "")
    return cfg


def section_options(name: str, given, known, what: str = "option") -> dict:
    """Section ``name`` of a config as a dict, checked: a mapping (or empty) whose keys are all in ``known``.

    Raises :class:`ConfigError` naming the section, the unknown keys and the valid ones.
    """
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise ConfigError(f"config section {name!r} must be a mapping")
    unknown = set(given) - set(known)
    if unknown:
        raise ConfigError(f"unknown {name} {what}(s): {sorted(unknown)}; known: {sorted(known)}")
    return dict(given)


def keyword_names(cls) -> list[str]:
    """Keyword parameters of ``cls.__init__`` after the first positional one (the valid section keys)."""
    import inspect

    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
