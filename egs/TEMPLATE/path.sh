# Environment of the recipe, sourced by run.sh: the csmvanet virtual environment (tools/venv of the
# checkout, if present; else csmvanet must already be on PATH) and utils/ on PATH, C locale, one
# thread per process (parallelism comes from --nj jobs and the training engine), unbuffered Python
# output so that logs are current.
# CSMVANET_ROOT: the csmvanet checkout (default: two levels above this recipe folder).
MAIN_ROOT=${CSMVANET_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -x "$MAIN_ROOT/tools/venv/bin/python" ]; then
  export VIRTUAL_ENV="$MAIN_ROOT/tools/venv"
  export PATH="$VIRTUAL_ENV/bin:$PATH"
fi
export PATH="$MAIN_ROOT/utils:$PATH"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=1
export MKL_NUM_THREADS=1
if ! command -v csmvanet-train >/dev/null 2>&1; then
  echo "path.sh: csmvanet is not installed: run tools/install.sh in $MAIN_ROOT, or activate an environment with it" >&2
fi
