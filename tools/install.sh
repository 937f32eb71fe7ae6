#!/usr/bin/env bash
# Creates tools/venv and installs torch and csmvanet (editable, with test extras) into it.
# Re-running is cheap: nothing is reinstalled while setup.py and the torch spec are unchanged.
#
#   TORCH_SPEC   the torch requirement to install (default: torch==2.13.0, a CPU build).
#                GPU users: e.g. TORCH_SPEC="torch==2.5.1" TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu124"
#   TORCH_PIP_ARGS  extra pip arguments for the torch install only.
#   PYTHON       the interpreter that creates the venv (default: python3).
set -euo pipefail
tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$tools_dir")
venv="$tools_dir/venv"
torch_spec=${TORCH_SPEC:-torch==2.13.0}
python=${PYTHON:-python3}

stamp="$venv/.installed"
want="$torch_spec|${TORCH_PIP_ARGS:-}|$(cat "$root/setup.py" | cksum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "import csmvanet, torch" 2>/dev/null; then
  exit 0
fi

echo "[install] creating $venv" >&2
if [ ! -x "$venv/bin/python" ]; then
  # the venv module (Debian: python3-venv) may be missing; virtualenv from PyPI does the same job
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    echo "[install] python -m venv failed; using virtualenv from PyPI" >&2
    "$python" -m pip install -q --user virtualenv 2>/dev/null || "$python" -m pip install -q virtualenv
    "$python" -m virtualenv -q "$venv"
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
echo "[install] $torch_spec" >&2
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install -q "$torch_spec" ${TORCH_PIP_ARGS:-}
echo "[install] csmvanet[test]" >&2
"$venv/bin/python" -m pip install -q -e "$root[test]"
"$venv/bin/python" -c "import csmvanet, torch; print('[install] csmvanet', csmvanet.__version__, 'torch', torch.__version__)" >&2
echo "$want" > "$stamp"
