#!/usr/bin/env bash
# The recipes' training stage: runs csmvanet-train on a train and a VALIDATION data dir.
# The checkpoint used for decoding is chosen on <valid-data-dir> only; never pass a test set here.
#
#   steps/train.sh [--cmd utils/run.pl] [--ngpu N] [--num_nodes N] [--train_args "..."] [--init_param SPEC]
#                  [--resume true|false] <config> <train-data-dir> <valid-data-dir> <exp-dir>
#
# --ngpu 0: CPU; 1: one GPU; N > 1: `torchrun --standalone --nproc_per_node N` (DDP, nccl).
# --num_nodes N > 1 (Slurm only): run this script inside an allocation of N nodes with ngpu GPUs
#   each (e.g. `sbatch --nodes N --gres gpu:G --ntasks-per-node 1 run.sh --stage 3 --ngpu G
#   --num_nodes N`); it starts one torchrun per node with `srun`, rendezvous (c10d) on the first
#   node of $SLURM_JOB_NODELIST, port $MASTER_PORT (default 29500), id $SLURM_JOB_ID. The log is
#   <exp-dir>/train.log as for one node; $cmd is not used then (srun places the processes).
# --train_args: extra csmvanet-train options, e.g. "--train.epochs 10 --optim.lr 1e-4".
# --init_param: start from trained weights (fine-tuning; ESPnet's name): a packed model, an exp dir or
#   a .pth, with ESPnet's path[:src_key[:dst_key[:exclude_keys]]] (csmvanet/train/init_param.py).
# --resume true (default): continue from <exp-dir>/checkpoint_last.pth when it exists (after a kill
#   or a time limit); false: refuse to touch an exp dir that already holds a run.
# An earlier <exp-dir>/train.log is kept as train.log.1, .2, ... Every option and input is checked
# before the exp dir is touched.
set -euo pipefail

cmd=utils/run.pl
ngpu=1
num_nodes=1
train_args=
resume=true
init_param=       # csmvanet-train --train.init_param (empty: random initialisation)
num_threads=      # torch threads per process (default: every core for CPU training)
help_message="Usage: $0 [options] <config> <train-data-dir> <valid-data-dir> <exp-dir>
Options:
  --cmd CMD          job runner (utils/run.pl, utils/slurm.pl ...; default $cmd)
  --ngpu N           GPUs per node; 0 = CPU (default $ngpu)
  --num_nodes N      nodes (Slurm allocation needed when > 1; default $num_nodes)
  --train_args ARGS  extra csmvanet-train options, e.g. \"--train.epochs 10\"
  --init_param SPEC  start from these weights: path[:src_key[:dst_key[:exclude_keys]]]
  --resume BOOL      continue from <exp-dir>/checkpoint_last.pth if present (default $resume)
  --num_threads N    torch/OpenMP threads per process (default: every core for CPU training,
                     else OMP_NUM_THREADS as set by path.sh)"

. utils/parse_options.sh

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
config=$1
train_dir=$2
valid_dir=$3
exp_dir=$4

for f in "$config" "$train_dir/wav.scp" "$train_dir/spk1.scp" "$valid_dir/wav.scp" "$valid_dir/spk1.scp"; do
  if [ ! -f "$f" ]; then
    echo "$0: no such file: $f" >&2
    exit 1
  fi
done
if [ "$(cd "$train_dir" && pwd -P)" = "$(cd "$valid_dir" && pwd -P)" ]; then
  echo "$0: the train and valid data dirs are the same ($train_dir)" >&2
  exit 1
fi
case "$ngpu" in ''|*[!0-9]*) echo "$0: --ngpu must be a number, not '$ngpu'" >&2; exit 1 ;; esac
case "$num_nodes" in ''|*[!0-9]*|0) echo "$0: --num_nodes must be a positive number, not '$num_nodes'" >&2; exit 1 ;; esac
case "$num_threads" in '') ;; *[!0-9]*|0*) echo "$0: --num_threads must be a positive number, not '$num_threads'" >&2; exit 1 ;; esac
[ -n "$cmd" ] || { echo "$0: --cmd is empty" >&2; exit 1; }
if [ -e "$exp_dir" ] && [ ! -d "$exp_dir" ]; then echo "$0: $exp_dir exists and is not a directory" >&2; exit 1; fi
if [ "$num_nodes" -gt 1 ]; then  # checked here, before the exp dir is touched
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "$0: --num_nodes $num_nodes needs a Slurm allocation of $num_nodes nodes (run inside sbatch/salloc)" >&2
    exit 1
  fi
  if [ "$ngpu" -lt 1 ]; then
    echo "$0: --num_nodes > 1 trains on GPUs: give --ngpu (GPUs per node)" >&2
    exit 1
  fi
fi
if [ -f "$exp_dir/checkpoint_last.pth" ] && [ "$resume" != true ]; then
  echo "$0: $exp_dir already holds a training run (checkpoint_last.pth); use --resume true or another exp dir" >&2
  exit 1
fi

mkdir -p "$exp_dir"
resume_opt=
if [ -f "$exp_dir/checkpoint_last.pth" ]; then
  resume_opt=--resume
  echo "$0: resuming from $exp_dir/checkpoint_last.pth"
fi
if [ -f "$exp_dir/train.log" ]; then
  n=1
  while [ -e "$exp_dir/train.log.$n" ]; do n=$((n + 1)); done
  mv "$exp_dir/train.log" "$exp_dir/train.log.$n"
fi

# path.sh sets OMP_NUM_THREADS=1 (parallelism from --nj jobs); CPU training is one process, so it
# gets every core unless told otherwise.
if [ -z "$num_threads" ] && [ "$ngpu" -eq 0 ]; then
  num_threads=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1)  # nproc obeys OMP_NUM_THREADS
fi
if [ -n "$num_threads" ]; then
  export OMP_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads
fi

# shellcheck disable=SC2086  # train_args is a list of words
args=(--config "$config" --train_dir "$train_dir" --valid_dir "$valid_dir" --exp_dir "$exp_dir"
      --ngpu "$ngpu" $resume_opt $train_args)
if [ -n "$init_param" ]; then args+=(--train.init_param "$init_param"); fi

if [ "$num_nodes" -gt 1 ]; then
  master=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
  port=${MASTER_PORT:-29500}
  echo "$0: $num_nodes nodes x $ngpu GPUs, rendezvous at $master:$port; log: $exp_dir/train.log"
  srun --nodes "$num_nodes" --ntasks "$num_nodes" --ntasks-per-node 1 \
    torchrun --nnodes "$num_nodes" --nproc_per_node "$ngpu" --rdzv_id "$SLURM_JOB_ID" \
      --rdzv_backend c10d --rdzv_endpoint "$master:$port" -m csmvanet.bin.train "${args[@]}" \
      >> "$exp_dir/train.log" 2>&1
elif [ "$ngpu" -gt 1 ]; then
  echo "$0: $ngpu GPUs (torchrun); log: $exp_dir/train.log"
  $cmd --gpu "$ngpu" "$exp_dir/train.log" \
    torchrun --standalone --nnodes 1 --nproc_per_node "$ngpu" -m csmvanet.bin.train "${args[@]}"
else
  echo "$0: training on $([ "$ngpu" -eq 0 ] && echo CPU || echo 1 GPU); log: $exp_dir/train.log"
  $cmd --gpu "$ngpu" ${num_threads:+--num-threads "$num_threads"} "$exp_dir/train.log" csmvanet-train "${args[@]}"
fi
echo "$0: done; model for decoding: $exp_dir/$(sed -n 's/^ *best_criterion: *//p' "$exp_dir/config.yaml" | head -n 1).ave.pth"
