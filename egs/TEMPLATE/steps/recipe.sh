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
#   if run_stage 0 "get the corpus"; then recipe_run local/download.sh "$corpus_root"; fi
#   ...
#   if run_stage 3 "train"; then
#     recipe_run steps/train.sh "${stage3_opts[@]}" "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
#   fi
#
# The options of the shared steps of stages 2-5 (steps/prepare_dump.sh, train.sh, decode.sh,
# score_sets.sh) are made here once, from the command line, as the arrays stage2_opts .. stage5_opts:
# a run.sh passes them and adds only its corpus' own (a later --option wins).
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
dry_run=false                     # print the commands each stage would run (their options checked), run nothing
nj=4                              # parallel jobs (data preparation, scoring)
inference_nj=                     # parallel jobs of stage 4 (empty: --nj)
gpu_inference=false               # stage 4 on GPUs: one per job, csmvanet-enhance --device cuda
inference_model=valid.loss.ave.pth  # the weights file of exp/<tag> that stage 4 uses (or a path)
enhance_args=                     # extra csmvanet-enhance options of stage 4, e.g. "--segment_seconds 6"
score_opts=                       # extra csmvanet-score options of stage 5, e.g. "--vad_threshold 0.6"
published=                        # YAML of published rows for the test sets' tables of stage 5 (marked 'published')
datadir=data                      # stage 1 output: data dirs / lists pointing into the corpus
dumpdir=dump                      # stage 2 output: the data dirs used for training and testing
expdir=exp                        # experiments: $expdir/<tag>
train_set=train                   # the training set (a data dir of $dumpdir)
valid_set=valid                   # the validation set: the checkpoint is chosen on it; decoded and scored too
test_sets=test                    # the test sets: decoded and scored (stages 4-5)
train_config=conf/train.yaml      # csmvanet-train config
vad_config=conf/vad.yaml          # VAD label settings of stage 2 (csmvanet.data.vad.VADLabelConfig)
train_args=                       # extra csmvanet-train options, e.g. "--train.epochs 10"
tag=                              # experiment name (empty: csmvanet_<config name>)
ngpu=1                            # GPUs per node for training (0: CPU; N > 1: DDP through torchrun)
num_nodes=1                       # nodes for training (N > 1: under a Slurm allocation, see steps/train.sh)
fs=16000                          # sample rate from stage 2 on, in Hz (ESPnet's 16k / 8k accepted)
# ESPnet enh.sh names (egs2/TEMPLATE/enh1/enh.sh) and what they do here (docs/espnet-switches.md):
enh_config=                       # ESPnet's name of --train_config (wins when given)
enh_args=                         # ESPnet's name of --train_args (appended to them)
enh_tag=                          # ESPnet's name of --tag (wins when given)
enh_exp=                          # the experiment dir (default: $expdir/<tag>; wins over --tag)
inference_args=                   # ESPnet's name of --enhance_args (appended to them)
inference_tag=enhanced            # stage 4-5 folders: exp/<tag>/<inference_tag>_<set> (as ESPnet's)
inference_enh_config=             # YAML of csmvanet-enhance settings (vad_floor: 0.5 ...) for stage 4
ref_num=1                         # speakers to enhance: 1 (single-speaker enhancement; others refused)
use_noise_ref=false               # stage 2 also writes the scaled noise of each mixture (noise1.scp)
speed_perturb_factors=            # e.g. "0.9 1.0 1.1": speed-perturbed training copies (sp0.9-<utt>)
min_wav_duration=                 # training utterances this short (s) or shorter are left out (empty: none)
max_wav_duration=                 # training utterances this long (s) or longer are left out (empty: none)
local_data_opts=                  # extra options of stage 1's local/data_prep.sh
init_param=                       # start training from these weights: packed model, exp dir or .pth[:src[:dst[:exclude]]]
audio_format=wav                  # audio files written from stage 2 on: wav or flac
scoring_protocol="PESQ STOI SI_SNR CSIG CBAK COVL SSNR"  # ESPnet per-metric files of stage 5 (scoring/result_<metric>.txt)

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
  for b in skip_data_prep skip_train skip_eval gpu_inference dry_run; do _recipe_bool "$b" "${!b}"; done
  _recipe_int nj "$nj" 1
  [ -n "$inference_nj" ] || inference_nj=$nj
  _recipe_int inference_nj "$inference_nj" 1
  _recipe_int ngpu "$ngpu" 0
  [ -n "$inference_model" ] || recipe_die "--inference_model is empty"
  [ -n "$test_sets" ] || recipe_die "--test_sets is empty"
  _recipe_espnet
  [ -n "$tag" ] || tag=csmvanet_$(basename "${train_config%.*}")${speed_perturb_factors:+_sp}
  exp=$expdir/$tag
  if [ -n "$enh_exp" ]; then exp=$enh_exp; tag=$(basename "$enh_exp"); fi
  if [ "$ngpu" -gt 0 ]; then train_job_cmd=${cuda_cmd:-utils/run.pl}; else train_job_cmd=${train_cmd:-utils/run.pl}; fi
  if $gpu_inference; then inference_cmd=${cuda_cmd:-utils/run.pl}; else inference_cmd=${decode_cmd:-utils/run.pl}; fi
  _recipe_stage_opts
}

# The options every recipe gives the shared steps of stages 2-5 (set once here, so that no run.sh
# can drop or misspell one).
# shellcheck disable=SC2034  # used by run.sh
_recipe_stage_opts() {
  stage2_opts=(--nj "$nj" --cmd "${train_cmd:-utils/run.pl}" --fs "$fs" --train_config "$train_config"
               --vad_config "$vad_config" --use_noise_ref "$use_noise_ref" --audio_format "$audio_format"
               --train_set "$train_set" --train_data "$train_data" --speed_perturb_factors "$speed_perturb_factors"
               --min_wav_duration "$min_wav_duration" --max_wav_duration "$max_wav_duration")
  stage3_opts=(--cmd "$train_job_cmd" --ngpu "$ngpu" --num_nodes "$num_nodes" --train_args "$train_args"
               --init_param "$init_param")
  stage4_opts=(--nj "$inference_nj" --cmd "$inference_cmd" --use_gpu "$gpu_inference" --model "$inference_model"
               --enhance_args "$enhance_args")
  stage5_opts=(--nj "$nj" --cmd "${decode_cmd:-utils/run.pl}" --title "$tag" --published "$published"
               --score_opts "$score_opts" --valid_set "$valid_set" --inference_tag "$inference_tag"
               --scoring_protocol "$scoring_protocol")
}

# recipe_run <command> [args]: a command of a stage; with --dry_run true it is printed (shell-quoted,
# as "[dry run] <command>") instead of run.
recipe_run() {
  if $dry_run; then
    log "[dry run] $(printf '%q ' "$@")"
  else
    "$@"
  fi
}

# recipe_only_fs <Hz>: refuse any other --fs, for a corpus at that rate that the recipe does not
# resample (run.sh, after recipe_init).
recipe_only_fs() {
  [ "$fs" -eq "$1" ] || recipe_die "--fs $fs: this recipe's corpus is $(( $1 / 1000 )) kHz and it does not resample ($1 only)"
}

# recipe_ints <name>...: refuse (before anything runs) a recipe option that is not a whole number.
recipe_ints() {
  local v
  for v in "$@"; do _recipe_int "$v" "${!v}" 0; done
}

# The ESPnet switches: aliases folded into our options, the others checked; sets
#   train_data  the training set of stage 3: $train_set, or ${train_set}_sp when speed perturbation
#               or a length filter makes a new one (stage 2, steps/perturb_train_set.sh)
_recipe_espnet() {
  [ -z "$enh_config" ] || train_config=$enh_config
  [ -z "$enh_args" ] || train_args="$train_args $enh_args"
  [ -z "$enh_tag" ] || tag=$enh_tag
  [ -z "$inference_args" ] || enhance_args="$enhance_args $inference_args"
  _recipe_int num_nodes "$num_nodes" 1
  case "$fs" in
    *k) [[ "${fs%k}" =~ ^[0-9]+$ ]] && fs=$(( ${fs%k} * 1000 )) || recipe_die "--fs '$fs': give Hz (16000) or kHz (16k)" ;;
    *[!0-9]*|'') recipe_die "--fs '$fs': give Hz (16000) or kHz (16k)" ;;
  esac
  _recipe_int fs "$fs" 1000
  _recipe_int ref_num "$ref_num" 0
  [ "$ref_num" -eq 1 ] || recipe_die "--ref_num $ref_num: csmvanet enhances one speaker (spk1.scp); speech separation (ref_num > 1) is not supported"
  _recipe_bool use_noise_ref "$use_noise_ref"
  [[ "$inference_tag" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || recipe_die "--inference_tag '$inference_tag': a folder name prefix (letters, digits, . _ -)"
  case "$audio_format" in
    wav|flac) ;;
    *.ark) recipe_die "--audio_format $audio_format: Kaldi ark audio is not written here (wav or flac)" ;;
    *) recipe_die "--audio_format '$audio_format': wav or flac" ;;
  esac
  local v
  for v in min_wav_duration max_wav_duration; do
    [ -z "${!v}" ] || [[ "${!v}" =~ ^[0-9]+([.][0-9]+)?$ ]] || recipe_die "--$v '${!v}' is not a number of seconds"
  done
  for v in $speed_perturb_factors; do
    [[ "$v" =~ ^[0-9]+([.][0-9]+)?$ ]] || recipe_die "--speed_perturb_factors: '$v' is not a number"
  done
  if [ -n "$inference_enh_config" ]; then   # `option: value` lines -> csmvanet-enhance --option value
    [ -f "$inference_enh_config" ] || recipe_die "--inference_enh_config: no such file: $inference_enh_config"
    local opts
    opts=$(python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1])) or {}
if not isinstance(d, dict) or any(isinstance(v, (dict, list)) or " " in str(v) for v in d.values()):
    sys.exit("expected one `option: value` line per csmvanet-enhance option (e.g. vad_floor: 0.5)")
print(" ".join(f"--{k} {v}" for k, v in d.items()))' "$inference_enh_config" 2>&1) \
      || recipe_die "--inference_enh_config $inference_enh_config: $opts"
    enhance_args="$enhance_args $opts"
  fi
  for v in $init_param; do
    [ -e "${v%%:*}" ] || [[ "${v%%:*}" != */* ]] || recipe_die "--init_param: no such file or folder: ${v%%:*}"
  done
  for v in $scoring_protocol; do   # csmvanet/reports/espnet_files.py: what csmvanet-score writes
    case "${v^^}" in
      PESQ|STOI|SI_SNR|CSIG|CBAK|COVL|SSNR) ;;
      SDR|SAR|SIR|ESTOI) recipe_die "--scoring_protocol $v: csmvanet-score does not compute ${v^^} (BSS-Eval SDR/SAR/SIR, extended STOI); choose from PESQ STOI SI_SNR CSIG CBAK COVL SSNR" ;;
      *) recipe_die "--scoring_protocol $v: unknown metric; choose from PESQ STOI SI_SNR CSIG CBAK COVL SSNR" ;;
    esac
  done
  [ -n "$scoring_protocol" ] || recipe_die "--scoring_protocol is empty"
  train_data=$train_set
  if [ -n "$speed_perturb_factors$min_wav_duration$max_wav_duration" ]; then train_data=${train_set}_sp; fi
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
