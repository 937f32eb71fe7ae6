#!/usr/bin/env bash
# Creates tools/venv and installs torch and csmvanet (editable, with test extras) into it.
# Re-running is cheap: nothing is reinstalled while setup.py and the torch spec are unchanged.
#
#   TORCH_SPEC   the torch requirement to install (default: torch==2.13.0). What it resolves to depends
#                on the index pip uses: on the public PyPI index it is the CUDA build of torch with its
#                nvidia-* wheels (several GB); a mirror may serve a CPU build instead.
#   TORCH_PIP_ARGS  extra pip arguments for the torch install only. CPU-only build:
#                TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
#                a given CUDA build (pick the one your driver supports, see nvidia-smi):
#                TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu128"   (cu118, cu126, ...: see pytorch.org/get-started)
# At the end it prints the torch it installed (version, CUDA build or CPU) and whether CUDA is usable.
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
"$venv/bin/python" - >&2 <<'PY'
import csmvanet, torch
build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
if torch.cuda.is_available():
    usable = f"CUDA usable: yes, {torch.cuda.device_count()} device(s), {torch.cuda.get_device_name(0)}"
elif torch.version.cuda:
    usable = "CUDA usable: no (no GPU or driver visible; torch runs on the CPU)"
else:
    usable = "CUDA usable: no (CPU-only build)"
print(f"[install] csmvanet {csmvanet.__version__}; torch {torch.__version__} ({build}); {usable}")
PY
echo "$want" > "$stamp"
