#!/usr/bin/env perl
# Runs a command (or an array of commands) as one Slurm job through sbatch, waits for it, and
# fails naming a failing log. Same interface and logs as utils/run.pl:
#
#   utils/slurm.pl [options] JOB=1:N log/x.JOB.log command args...
#   utils/slurm.pl [options] log/x.log command args...
#
# Options:
#   --gpu N            --gres=gpu:N (none when N is 0)
#   --mem X            --mem=X (per node, e.g. 4G)
#   --time T           --time=T (e.g. 2:00:00)
#   --num-threads N    --cpus-per-task=N
#   --max-jobs-run N   at most N array tasks at a time (--array=1-N%M)
#   --partition P      --partition=P (default: $SLURM_PARTITION if set, else the cluster's default)
# Other sbatch settings (account, qos, ...) come from sbatch's own SBATCH_* environment variables.
#
# JOB=1:N submits one array job (--array=1-N); every occurrence of JOB in the log name and in the
# command becomes the task index. The command is quoted as in run.pl (one argument: used verbatim;
# several: each quoted for bash except plain words and shell operators such as \| \> 2>&1) and
# runs through bash in the current folder with the current environment.
#
# The batch script is written to <log dir>/q/<name>.sh and Slurm's own output of task K (time-limit
# and cancel notices) to <log dir>/q/<name>.K.out. The script itself writes each log: command line,
# start time and host, the command's output, then "# Accounting: ..." and "# Ended (code X) ...".
# After the job leaves the queue (polled with squeue; no accounting database is needed) each log's
# exit status is read. A task without one (killed, timed out, node failure) counts as failed.
# Exit 0 if all tasks succeeded; else 1 with "slurm.pl: F / N failed, log is in log/x.K.log".
# Killing slurm.pl (INT/TERM) cancels the job.
use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use Time::HiRes qw(sleep time);

my $me = "slurm.pl";
my %opt = (gpu => 0, mem => "", time => "", "num-threads" => 0, "max-jobs-run" => 0,
           partition => $ENV{SLURM_PARTITION} // "");

sub usage {
  print STDERR "Usage: $me [--gpu N] [--mem X] [--time T] [--num-threads N] [--max-jobs-run N] "
    . "[--partition P] [JOB=1:N] log/x.JOB.log command args...\n";
  exit 1;
}

while (@ARGV && $ARGV[0] =~ /^--?[A-Za-z]/) {
  my $o = shift @ARGV;
  my $val;
  if ($o =~ /^(--?[^=]+)=(.*)$/s) { ($o, $val) = ($1, $2); }
  else {
    usage() unless @ARGV;
    $val = shift @ARGV;
  }
  (my $name = $o) =~ s/^--?//;
  $name =~ s/_/-/g;
  die "$me: unknown option $o\n" unless exists $opt{$name};
  if ($name =~ /^(gpu|num-threads|max-jobs-run)$/ && $val !~ /^\d+$/) {
    die "$me: --$name needs a non-negative integer, not '$val'\n";
  }
  $opt{$name} = $val;
}

my ($jobname, $first, $last, $is_array) = ("", 1, 1, 0);
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+):(\d+)$/) {
  ($jobname, $first, $last, $is_array) = ($1, $2, $3, 1);
  shift @ARGV;
  die "$me: bad job range $jobname=$first:$last\n" if $first < 1 || $last < $first;
} elsif (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+)$/) {
  ($jobname, $first, $last, $is_array) = ($1, $2, $2, 1);
  shift @ARGV;
}
usage() if @ARGV < 2;
my $logpat = shift @ARGV;
die "$me: the log name '$logpat' has no $jobname in it, so all tasks would share it\n"
  if $jobname ne "" && $last > $first && index($logpat, $jobname) < 0;
my $cmd = join_command(@ARGV);

sub join_command {
  my @args = @_;
  return $args[0] if @args == 1;
  my @out;
  for my $a (@args) {
    if ($a =~ m{^[A-Za-z0-9_+=.,:/\@%-]+$} || $a =~ /^(\||\|\||&&|;|<|>|>>|2>|2>>|&>|2>&1|>&2|\(|\))$/) {
      push @out, $a;
    }
    else { push @out, shq($a); }
  }
  return join(" ", @out);
}

sub shq { my $s = shift; $s =~ s/'/'\\''/g; return "'$s'"; }

sub subst {
  my ($s, $id) = @_;
  $s =~ s/\Q$jobname\E/$id/g if $jobname ne "";
  return $s;
}

# Where the batch script and Slurm's output go: <log dir>/q/<log name without JOB and .log>.
my $logdir = dirname($logpat);
my $qdir = "$logdir/q";
my $base = basename($logpat);
$base =~ s/\.log$//;
if ($jobname ne "") { $base =~ s/\.?\Q$jobname\E//g; }
$base = "job" if $base eq "";
make_path($qdir) unless -d $qdir;
die "$me: cannot create $qdir\n" unless -d $qdir;

# Old logs would be read as results of this run: remove them first.
for my $id ($first .. $last) { unlink subst($logpat, $id); }

my $threads = $opt{"num-threads"} || 1;
my $cwd = getcwd();
my $script = "$qdir/$base.sh";
my $out = $is_array ? "$qdir/$base.%a.out" : "$qdir/$base.out";
my $jn = $jobname eq "" ? "JOB" : $jobname;  # placeholder name used inside the script
my $default_id = $first;

my @sbatch = ("sbatch", "--parsable", "--job-name=$base", "--output=$out", "--chdir=$cwd");
if ($is_array) {
  my $arr = "--array=$first-$last";
  $arr .= "%$opt{'max-jobs-run'}" if $opt{"max-jobs-run"} > 0;
  push @sbatch, $arr;
}
push @sbatch, "--gres=gpu:$opt{gpu}" if $opt{gpu} > 0;
push @sbatch, "--mem=$opt{mem}" if $opt{mem} ne "";
push @sbatch, "--time=$opt{time}" if $opt{time} ne "";
push @sbatch, "--cpus-per-task=$opt{'num-threads'}" if $opt{"num-threads"} > 0;
push @sbatch, "--partition=$opt{partition}" if $opt{partition} ne "";

open(my $sfh, ">", "$script.tmp") or die "$me: cannot write $script: $!\n";
print $sfh <<"EOF";
#!/bin/bash
# Written by utils/slurm.pl at ${\ scalar localtime}
# Submitted with: @sbatch $script
cd ${\ shq($cwd)} || exit 1
task=\${SLURM_ARRAY_TASK_ID:-$default_id}
cmd_template=${\ shq($cmd)}
log_template=${\ shq($logpat)}
EOF
if ($jobname ne "") {
  print $sfh "cmd=\${cmd_template//$jn/\$task}\nlog=\${log_template//$jn/\$task}\n";
} else {
  print $sfh "cmd=\$cmd_template\nlog=\$log_template\n";
}
print $sfh <<"EOF";
mkdir -p "\$(dirname "\$log")"
t0=\$(date +%s)
{ printf '# %s\\n' "\$cmd"; echo "# Started at \$(date) on \$(hostname) (slurm job \${SLURM_JOB_ID:-?})"; } > "\$log"
bash -c "\$cmd" < /dev/null >> "\$log" 2>&1
ret=\$?
t1=\$(date +%s)
echo "# Accounting: time=\$((t1 - t0)) threads=$threads" >> "\$log"
echo "# Ended (code \$ret) at \$(date), elapsed time \$((t1 - t0)) seconds" >> "\$log"
exit \$ret
EOF
close $sfh;
rename("$script.tmp", $script) or die "$me: cannot write $script: $!\n";
chmod 0755, $script;

# Submit.
my $submit = join(" ", map { shq($_) } (@sbatch, $script)) . " 2>&1";
my $reply = `$submit`;
my $rc = $?;
chomp $reply;
if ($rc != 0 || $reply !~ /^(\d+)(;\S+)?\s*$/m) {
  print STDERR "$me: sbatch failed: $reply\n$me: command was: @sbatch $script\n";
  exit 1;
}
my $jobid = $1;

my $cancelled = 0;
sub cancel {
  $cancelled = 1;
  system("scancel", $jobid);
  print STDERR "$me: interrupted; cancelled slurm job $jobid\n";
  exit 1;
}
$SIG{INT} = \&cancel;
$SIG{TERM} = \&cancel;
$SIG{HUP} = \&cancel;

# Wait until the job has left the queue.
my $delay = 0.5;
my $errors = 0;
while (1) {
  my $q = `squeue -h -j $jobid -o %T 2>&1`;
  my $qrc = $?;
  if ($qrc != 0) {
    last if $q =~ /Invalid job id/i;  # purged from the controller: finished
    $errors++;
    die "$me: squeue keeps failing for job $jobid ($q); giving up\n" if $errors > 60;
    print STDERR "$me: warning: squeue failed ($q), retrying\n" if $errors % 10 == 1;
  } else {
    $errors = 0;
    last if $q !~ /\S/;
  }
  sleep $delay;
  $delay = $delay * 1.25 > 10 ? 10 : $delay * 1.25;
}

# Read each task's exit status from its log.
sub exit_code {
  my $log = shift;
  open(my $fh, "<", $log) or return undef;
  my $code;
  while (<$fh>) { $code = $1 if /^# Ended \(code (\d+)\)/; }
  close $fh;
  return $code;
}

my %code;
my %gone;  # tasks that Slurm ended abnormally: they will never write a status
my $deadline = time() + 20;  # logs on a network file system may show up late
while (1) {
  my $waiting = 0;
  for my $id ($first .. $last) {
    next if defined $code{$id} || $gone{$id};
    $code{$id} = exit_code(subst($logpat, $id));
    next if defined $code{$id};
    my $st = task_state($id);
    if ($st ne "" && $st !~ /^(COMPLETED|COMPLETING|RUNNING|PENDING|CONFIGURING)$/) { $gone{$id} = $st; }
    else { $waiting++; }
  }
  last if !$waiting || time() > $deadline;
  sleep 1;
}

sub task_state {
  my $id = shift;
  my $task = $is_array ? "${jobid}_$id" : $jobid;
  my $st = `scontrol -o show job $task 2>/dev/null`;
  return $st =~ /JobState=(\S+)/ ? $1 : "";
}

my @failed;
for my $id ($first .. $last) {
  next if defined $code{$id} && $code{$id} == 0;
  push @failed, $id;
  my $log = subst($logpat, $id);
  if (!defined $code{$id}) {
    my $slurm_out = $is_array ? "$qdir/$base.$id.out" : "$qdir/$base.out";
    my $st = $gone{$id} || task_state($id);
    my $state = $st ne "" ? " (slurm state $st)" : "";
    print STDERR "$me: task $id of job $jobid ended without an exit status in $log$state; "
      . "see $slurm_out\n";
  }
}
if (@failed) {
  my $n = $last - $first + 1;
  print STDERR "$me: " . scalar(@failed) . " / $n failed, log is in " . subst($logpat, $failed[-1]) . "\n";
  exit 1;
}
exit 0;
