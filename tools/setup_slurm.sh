#!/usr/bin/env bash
# Installs, configures and starts a single-node Slurm (slurmctld + slurmd + munge) on this machine,
# for running recipes through utils/slurm.pl and for the slurm.pl test. Debian/Ubuntu, as root,
# no systemd needed.
#
#   tools/setup_slurm.sh [start]   install if needed, write the config, start the daemons, wait for
#                                  the node; prints "slurm: idle" when ready. Re-running while the
#                                  cluster is up only prints its status.
#   tools/setup_slurm.sh status    prints "slurm: <node state>"; exit 0 if up, 3 if not.
#   tools/setup_slurm.sh stop      stops slurmd, slurmctld and munged by the pids in their pid files
#                                  (munged only if this script started it).
# Exit status of start: 0 when up, 2 when Slurm cannot be installed or started here (not root, no
# apt-get, the package install failed), 1 for any other failure.
#
# Environment:
#   SLURM_STATE_DIR   where state, spool, logs, pid files and the config live
#                     (default: tools/slurm in this repository).
#   SLURM_CONF        the config path the Slurm commands read (default /etc/slurm/slurm.conf). A
#                     config there that this script did not write is never overwritten: the script
#                     stops with an error instead (point SLURM_CONF elsewhere to keep both).
#   MUNGE_DIR         a private munged: its key, socket, pid, log and seed files live here and the
#                     config points Slurm at this socket (AuthInfo=socket=...). Default: the system
#                     munged (/etc/munge, /run/munge). With SLURM_STATE_DIR, SLURM_CONF and MUNGE_DIR
#                     all under one folder, start writes nothing else (tests use this; stop, then
#                     remove the folder).
#
# The cluster: one node (this host, 127.0.0.1), one partition "debug", no accounting (sacct does not
# work; use squeue/scontrol), CR_Core so that jobs share the node by cores.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_dir=${SLURM_STATE_DIR:-$tools_dir/slurm}
conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
marker="# written by csmvanet tools/setup_slurm.sh"
munge_dir=${MUNGE_DIR:-}
if [ -n "$munge_dir" ]; then
  munge_key=$munge_dir/munge.key; munge_pid=$munge_dir/munged.pid; munge_sock=$munge_dir/munge.socket
  munged_opts=(--key-file="$munge_key" --socket="$munge_sock" --pid-file="$munge_pid"
               --log-file="$munge_dir/munged.log" --seed-file="$munge_dir/munged.seed")
  munge_client=(-S "$munge_sock")
  auth_info="AuthInfo=socket=$munge_sock"
else
  munge_key=/etc/munge/munge.key; munge_pid=/run/munge/munged.pid
  munged_opts=(); munge_client=(); auth_info=""
fi
action=${1:-start}

say() { echo "setup_slurm: $*" >&2; }
die() { say "error: $*"; exit 1; }
cannot_install() { say "error: $*"; exit 2; }  # exit 2: Slurm cannot be installed/started here

pid_alive() {  # pid file -> 0 if the process it names runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() {  # prints the node state (idle, mix, alloc, down*, ...) or nothing
  SLURM_CONF=$conf timeout 10 sinfo -h -o %t 2>/dev/null | head -n 1 || true
}

stop_pidfile() {  # pid file, name: TERM, wait up to 10 s, then KILL
  local f=$1 name=$2 pid i
  if ! pid_alive "$f"; then return 0; fi
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "killed $name (pid $pid)"
}

case "$action" in
  stop)
    stop_pidfile "$state_dir/slurmd.pid" slurmd
    stop_pidfile "$state_dir/slurmctld.pid" slurmctld
    # munged only if we started it (its pid was recorded by this script)
    if [ -s "$state_dir/munged.started" ] && pid_alive "$munge_pid" \
        && [ "$(cat "$munge_pid")" = "$(cat "$state_dir/munged.started")" ]; then
      stop_pidfile "$munge_pid" munged
    fi
    rm -f "$state_dir/munged.started"
    exit 0
    ;;
  status)
    st=$(command -v sinfo >/dev/null && node_state || true)
    if [ -n "$st" ] && pid_alive "$state_dir/slurmctld.pid" && pid_alive "$state_dir/slurmd.pid"; then
      echo "slurm: $st"; exit 0
    fi
    echo "slurm: not running"; exit 3
    ;;
  start) ;;
  *) die "unknown action '$action' (use start, status or stop)" ;;
esac

# Already up: just report.
if command -v sinfo >/dev/null && pid_alive "$state_dir/slurmctld.pid" && pid_alive "$state_dir/slurmd.pid"; then
  st=$(node_state)
  case "$st" in
    idle|mix|alloc|comp) echo "slurm: $st"; exit 0 ;;
  esac
fi

[ "$(id -u)" = 0 ] || cannot_install "must run as root (installs packages and starts daemons)"

# 1. Install.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
  # exit 2 (cannot install here) passes through
  "$tools_dir/apt_install.sh" slurmctld slurmd slurm-client munge || exit $?
fi

# 2. munge: key, run dir, daemon (must run as the munge user).
if [ -n "$munge_dir" ]; then
  mkdir -p "$munge_dir"
  chmod 0755 "$munge_dir"
  [ -s "$munge_key" ] || mungekey --create --keyfile="$munge_key" >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$munge_key" bs=1 count=1024 status=none
  chown munge:munge "$munge_dir" "$munge_key"
  chmod 0400 "$munge_key"
else
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
fi
mkdir -p "$state_dir"
if ! pid_alive "$munge_pid"; then
  rm -f "$munge_pid"
  runuser -u munge -- /usr/sbin/munged "${munged_opts[@]}" || die "munged did not start (see its log)"
  for _ in $(seq 1 50); do [ -s "$munge_pid" ] && break; sleep 0.1; done
  cat "$munge_pid" > "$state_dir/munged.started"
fi
munge "${munge_client[@]}" -n | unmunge "${munge_client[@]}" >/dev/null || die "munge does not work (munge -n | unmunge failed)"

# 3. slurm.conf (this host as the only node, topology from slurmd -C).
host=$(hostname -s)
topology=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* *//' -e 's/ *UpTime=.*//')
[ -n "$topology" ] || die "slurmd -C printed no node description"
mkdir -p "$state_dir/state" "$state_dir/spool" "$state_dir/log"
new_conf="$state_dir/slurm.conf"
cat > "$new_conf.tmp" <<EOF
$marker
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
$auth_info
StateSaveLocation=$state_dir/state
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
SlurmctldLogFile=$state_dir/log/slurmctld.log
SlurmdLogFile=$state_dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 $topology State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
mv "$new_conf.tmp" "$new_conf"
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
  die "$conf exists and was not written by this script; set SLURM_CONF to another path"
fi
mkdir -p "$(dirname "$conf")"
cp "$new_conf" "$conf.tmp.$$" && mv "$conf.tmp.$$" "$conf"

# 4. Daemons (both fork and write their pid files).
if ! pid_alive "$state_dir/slurmctld.pid"; then
  slurmctld -c -f "$conf" || die "slurmctld did not start (see $state_dir/log/slurmctld.log)"
fi
if ! pid_alive "$state_dir/slurmd.pid"; then
  slurmd -f "$conf" || die "slurmd did not start (see $state_dir/log/slurmd.log)"
fi

# 5. Wait for the node.
for i in $(seq 1 120); do
  st=$(node_state)
  case "$st" in
    idle|mix|alloc) echo "slurm: $st"; exit 0 ;;
    down*|drain*|drng*)
      # e.g. left down by an earlier unclean stop: bring it back
      SLURM_CONF=$conf scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
die "node not idle after 60 s (state '${st:-none}'; see $state_dir/log/slurmctld.log and slurmd.log)"
