"""YAML configs with command-line style overrides (``--optim.lr 1e-4``)."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from csmvanet.errors import ConfigError


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path) as f:
        try:
            cfg = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
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


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply ``['--a.b', '3', '--c', 'x']`` (or ``a.b=3``) to a copy of cfg; values parsed as YAML."""
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
        set_by_path(cfg, key.replace("-", "_"), yaml.safe_load(raw) if raw != "" else "")
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
