# Job runners (Kaldi style). Every runner takes the same form:
#   $cmd [--gpu N] [--mem X] [--time T] [--num-threads N] [--max-jobs-run N] JOB=1:N log/x.JOB.log command ...
# local: utils/run.pl runs the jobs on this machine (resource options are ignored).
# slurm: utils/slurm.pl submits one sbatch array per call and waits for it (partition from
#        $SLURM_PARTITION or --partition; account, qos ... through sbatch's SBATCH_* variables).
# Choose with CSMVANET_BACKEND=slurm ./run.sh ..., or edit cmd_backend below. Adjust the memory and
# time limits to your cluster.
cmd_backend=${CSMVANET_BACKEND:-local}

case "$cmd_backend" in
  local)
    export train_cmd="utils/run.pl"      # CPU jobs: simulation, resampling, VAD labels
    export cuda_cmd="utils/run.pl"       # training
    export decode_cmd="utils/run.pl"     # enhancement and scoring
    ;;
  slurm)
    export train_cmd="utils/slurm.pl --mem 8G --time 4:00:00"
    export cuda_cmd="utils/slurm.pl --gpu 1 --mem 32G --num-threads 8 --time 72:00:00"
    export decode_cmd="utils/slurm.pl --mem 8G --time 4:00:00"
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '$cmd_backend' (local or slurm)" >&2
    return 1
    ;;
esac
