# The skeleton every run.sh shares (sourced, not run): the options common to all recipes, the
# command-line parsing with a --help generated from the option lines, the checks of the stage
# numbers and switches, and the stage gate. A run.sh reads:
#
#   set -euo pipefail
#   . steps/recipe.sh                  # the shared options below, then the functions
#   nj=8                               # parallel jobs ...     <- this recipe's options: one per line,
#   fs=16000                           # sample rate ...          `name=default  # help text`
#   . ./path.sh; . ./cmd.sh; . ./db.sh
#   corpus_root=$CORPUS                # corpus root (db.sh: CORPUS)
#   recipe_init "$@"                   # parse and check the command line; sets $tag, $exp, ...
#   if run_stage 0 "get the corpus"; then local/download.sh "$corpus_root"; fi
#   ...
#
# Every `name=value` line at column 0 above `recipe_init` in run.sh, and above the first function
# here, is an option (`--name value`), listed by `./run.sh --help` with its default (the value the
# variable holds then) and the comment of its line. A later line of the same name (run.sh) sets
# another default for this recipe.

stage=0                           # first stage to run (0-5)
stop_stage=5                      # last stage to run (0-5, not below --stage)
skip_data_prep=false              # skip stages 0-2 (corpus, data dirs, dump dirs): they are there
skip_train=false                  # skip stage 3 (training): exp/<tag> holds the model
skip_eval=false                   # skip stages 4-5 (enhancement and scoring)
nj=4                              # parallel jobs (data preparation, scoring)
inference_nj=                     # parallel jobs of stage 4 (empty: --nj)
gpu_inference=false               # stage 4 on GPUs: one per job, csmvanet-enhance --device cuda
inference_model=valid.loss.ave.pth  # the weights file of exp/<tag> that stage 4 uses (or a path)
enhance_args=                     # extra csmvanet-enhance options of stage 4, e.g. "--segment_seconds 6"
score_opts=                       # extra csmvanet-score options of stage 5, e.g. "--vad_threshold 0.6"
datadir=data                      # stage 1 output: data dirs / lists pointing into the corpus
dumpdir=dump                      # stage 2 output: the data dirs used for training and testing
expdir=exp                        # experiments: $expdir/<tag>
train_set=train                   # the training set (a data dir of $dumpdir)
valid_set=valid                   # the validation set: the checkpoint is chosen on it; decoded and scored too
test_sets=test                    # the test sets: decoded and scored (stages 4-5)
train_config=conf/train.yaml      # csmvanet-train config
train_args=                       # extra csmvanet-train options, e.g. "--train.epochs 10"
tag=                              # experiment name (empty: csmvanet_<config name>)
ngpu=1                            # GPUs per node for training (0: CPU; N > 1: DDP through torchrun)

# Messages of the run.sh that sources this: "<date> (run.sh:<line>) message".
log() {
  local i=1
  while [ "$i" -lt "${#BASH_SOURCE[@]}" ] && [ "${BASH_SOURCE[$i]##*/}" = recipe.sh ]; do i=$((i + 1)); done
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[$i]##*/}:${BASH_LINENO[$((i - 1))]}) $*"
}

recipe_die() {
  echo "$0: $* (see $0 --help)" >&2
  exit 1
}

# The option lines of a file: "name<TAB>help" for each column-0 `name=value  # help` line above the
# first line starting with `recipe_init` or a function definition.
_recipe_option_lines() {
  awk '/^recipe_init|^[A-Za-z_][A-Za-z0-9_]*\(\)/ { exit }
       /^[a-z][a-z0-9_]*=/ {
         name = $0; sub(/=.*/, "", name)
         help = ""; i = index($0, "  # "); if (i > 0) { help = substr($0, i + 4); sub(/^ +/, "", help) }
         print name "\t" help
       }' "$1"
}

# Usage text: run.sh's header comment, then every option with its current value (the default, as
# this is called before the command line is parsed) and its help.
recipe_help() {
  local script=$1 skeleton=${BASH_SOURCE[0]} name help
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$script"
  echo
  echo "Options (--name value; ./run.sh --config FILE reads name=value lines):"
  declare -A seen=()
  local names=() helps=()
  while IFS=$'\t' read -r name help; do
    if [ -n "${seen[$name]:-}" ]; then
      [ -z "$help" ] || helps[${seen[$name]}]=$help   # run.sh's line wins
    else
      seen[$name]=${#names[@]}
      names+=("$name")
      helps+=("$help")
    fi
  done < <(_recipe_option_lines "$skeleton"; _recipe_option_lines "$script")
  local i
  for i in "${!names[@]}"; do
    printf '  --%-20s %s (default: "%s")\n' "${names[$i]}" "${helps[$i]}" "${!names[$i]}"
  done
}

_recipe_int() {  # _recipe_int <option> <value> <min> [max]
  case "$2" in
    ''|*[!0-9]*) recipe_die "--$1 '$2' is not a number" ;;
  esac
  if [ "$2" -lt "$3" ] || { [ -n "${4:-}" ] && [ "$2" -gt "$4" ]; }; then
    recipe_die "--$1 $2 is out of range (${3}${4:+-$4})"
  fi
}

_recipe_bool() {
  case "$2" in true|false) ;; *) recipe_die "--$1 takes true or false, not '$2'" ;; esac
}

# Parse the command line of run.sh ("$@") and check it before anything runs; then set
#   tag           csmvanet_<config name> unless given
#   exp           $expdir/$tag
#   inference_nj  --nj unless given
#   train_job_cmd $cuda_cmd when training on GPUs, else $train_cmd (cmd.sh)
#   inference_cmd $cuda_cmd with --gpu_inference true, else $decode_cmd
recipe_init() {
  # shellcheck disable=SC2034  # read by utils/parse_options.sh
  help_message=$(recipe_help "$0")
  . utils/parse_options.sh
  if [ $# -ne 0 ]; then recipe_die "unexpected arguments: $*"; fi
  _recipe_int stage "$stage" 0 5
  _recipe_int stop_stage "$stop_stage" 0 5
  if [ "$stop_stage" -lt "$stage" ]; then
    recipe_die "--stop_stage $stop_stage is below --stage $stage: no stage would run"
  fi
  local b
  for b in skip_data_prep skip_train skip_eval gpu_inference; do _recipe_bool "$b" "${!b}"; done
  _recipe_int nj "$nj" 1
  [ -n "$inference_nj" ] || inference_nj=$nj
  _recipe_int inference_nj "$inference_nj" 1
  _recipe_int ngpu "$ngpu" 0
  [ -n "$inference_model" ] || recipe_die "--inference_model is empty"
  [ -n "$test_sets" ] || recipe_die "--test_sets is empty"
  [ -n "$tag" ] || tag=csmvanet_$(basename "${train_config%.*}")
  exp=$expdir/$tag
  if [ "$ngpu" -gt 0 ]; then train_job_cmd=${cuda_cmd:-utils/run.pl}; else train_job_cmd=${train_cmd:-utils/run.pl}; fi
  if $gpu_inference; then inference_cmd=${cuda_cmd:-utils/run.pl}; else inference_cmd=${decode_cmd:-utils/run.pl}; fi
}

# run_stage <N> <description>: true when stage N is to run (within --stage..--stop_stage and not
# skipped by a --skip_* switch); logs "Stage N: <description>", or why it is skipped.
run_stage() {
  local n=$1
  shift
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 1; fi
  local switch=
  case "$n" in
    0|1|2) $skip_data_prep && switch=skip_data_prep ;;
    3) $skip_train && switch=skip_train ;;
    4|5) $skip_eval && switch=skip_eval ;;
  esac
  if [ -n "$switch" ]; then
    log "Stage $n: skipped (--$switch true): $*"
    return 1
  fi
  log "Stage $n: $*"
}
