#!/usr/bin/env perl
# Runs a command (or an array of commands) on this machine and logs each, Kaldi style.
#
#   utils/run.pl [options] JOB=1:N log/x.JOB.log command args...
#   utils/run.pl [options] log/x.log command args...
#
# JOB=1:N starts N jobs; every occurrence of JOB (any NAME in NAME=a:b) in the log name and in the
# command is replaced by the job index. Jobs run in parallel, all at once unless --max-jobs-run
# limits them. The command runs through bash: pass one argument to have it used verbatim
# ('a | b > c'); with several arguments, each is quoted for bash (so it reaches the program as it
# was given) except plain words and the shell operators | || && ; < > >> 2> 2>> &> 2>&1 >&2 ( ),
# so a pipe or redirection can be written as its own escaped argument (\| \>), as in Kaldi.
#
# Each log holds the command line, the start time, the command's output (stdout and stderr), then
#   # Accounting: time=SECONDS threads=N
#   # Ended (code STATUS) at DATE, elapsed time SECONDS seconds
# Exit status 0 if every job succeeded; else 1, and stderr names a failing log:
#   run.pl: F / N failed, log is in log/x.K.log
#
# Options (utils/slurm.pl takes the same ones; here only --max-jobs-run has an effect):
#   --max-jobs-run N   at most N jobs at a time (default: all)
#   --gpu N            accepted and ignored locally (the job sees every GPU of this machine)
#   --mem X            accepted and ignored locally
#   --time T           accepted and ignored locally
#   --num-threads N    accepted and ignored locally (only written in the Accounting line)
#   --partition P      accepted and ignored locally
# Options may be written --opt value or --opt=value. Killing run.pl (INT/TERM) kills its jobs.
use strict;
use warnings;
use POSIX qw(:sys_wait_h setpgid strftime);
use File::Basename qw(dirname);
use File::Path qw(make_path);

my $me = "run.pl";
my $max_jobs_run = 0;
my $num_threads = 1;
my %ignored = map { $_ => 1 } qw(gpu mem time partition);

sub usage {
  print STDERR "Usage: $me [--max-jobs-run N] [--gpu N] [--mem X] [--time T] [--num-threads N] "
    . "[JOB=1:N] log/x.JOB.log command args...\n";
  exit 1;
}

while (@ARGV && $ARGV[0] =~ /^--?[A-Za-z]/) {
  my $opt = shift @ARGV;
  my $val;
  if ($opt =~ /^(--?[^=]+)=(.*)$/s) { ($opt, $val) = ($1, $2); }
  else {
    usage() unless @ARGV;
    $val = shift @ARGV;
  }
  (my $name = $opt) =~ s/^--?//;
  $name =~ s/_/-/g;
  if ($name eq "max-jobs-run") {
    die "$me: --max-jobs-run needs a positive integer, not '$val'\n" unless $val =~ /^\d+$/ && $val > 0;
    $max_jobs_run = $val;
  } elsif ($name eq "num-threads") {
    die "$me: --num-threads needs a positive integer, not '$val'\n" unless $val =~ /^\d+$/ && $val > 0;
    $num_threads = $val;
  } elsif ($ignored{$name}) {
    # resource requests mean nothing on the local machine
  } else {
    die "$me: unknown option $opt\n";
  }
}

my ($jobname, $first, $last) = ("", 1, 1);
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+):(\d+)$/) {
  ($jobname, $first, $last) = ($1, $2, $3);
  shift @ARGV;
  die "$me: bad job range $jobname=$first:$last\n" if $first < 1 || $last < $first;
} elsif (@ARGV && $ARGV[0] =~ /^([A-Za-z_]\w*)=(\d+)$/) {  # JOB=3: one job, index 3
  ($jobname, $first, $last) = ($1, $2, $2);
  shift @ARGV;
}
usage() if @ARGV < 2;
my $logpat = shift @ARGV;
die "$me: the log name '$logpat' has no $jobname in it, so all jobs would share it\n"
  if $jobname ne "" && $last > $first && index($logpat, $jobname) < 0;

my $cmd = join_command(@ARGV);

# Quote an argument for bash unless it is a plain word (Kaldi's rule: arguments without white space
# are passed as they are, so \| and \> stay shell operators).
sub join_command {
  my @args = @_;
  return $args[0] if @args == 1;
  my @out;
  for my $a (@args) {
    if ($a =~ m{^[A-Za-z0-9_+=.,:/\@%-]+$} || $a =~ /^(\||\|\||&&|;|<|>|>>|2>|2>>|&>|2>&1|>&2|\(|\))$/) {
      push @out, $a;
    }
    else { (my $q = $a) =~ s/'/'\\''/g; push @out, "'$q'"; }
  }
  return join(" ", @out);
}

sub subst {
  my ($s, $id) = @_;
  $s =~ s/\Q$jobname\E/$id/g if $jobname ne "";
  return $s;
}

my %running;  # pid -> job index
my %status;   # job index -> exit status
my $interrupted = 0;

sub kill_all {
  my $sig = shift;
  $interrupted = 1;
  kill "TERM", map { -$_ } keys %running;  # each job leads its own process group
  $SIG{$sig} = "DEFAULT";
}
$SIG{INT} = sub { kill_all("INT") };
$SIG{TERM} = sub { kill_all("TERM") };
$SIG{HUP} = sub { kill_all("HUP") };

sub start_job {
  my $id = shift;
  my $log = subst($logpat, $id);
  my $dir = dirname($log);
  make_path($dir) unless -d $dir;
  my $c = subst($cmd, $id);
  my $pid = fork();
  die "$me: fork failed: $!\n" unless defined $pid;
  if ($pid == 0) {
    setpgid(0, 0);
    $SIG{$_} = "DEFAULT" for qw(INT TERM HUP);
    open(my $fh, ">", $log) or do { print STDERR "$me: cannot write $log: $!\n"; POSIX::_exit(1); };
    my $t0 = time();
    print $fh "# $c\n# Started at " . localtime($t0) . "\n";
    close $fh;
    my $pid2 = fork();
    if (!defined $pid2) { POSIX::_exit(1); }
    if ($pid2 == 0) {
      open(STDIN, "<", "/dev/null");
      open(STDOUT, ">>", $log) or POSIX::_exit(1);
      open(STDERR, ">&", \*STDOUT) or POSIX::_exit(1);
      exec("bash", "-c", $c) or POSIX::_exit(127);
    }
    $SIG{TERM} = sub { kill "TERM", $pid2; };
    waitpid($pid2, 0);
    my $ret = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    my $t1 = time();
    open($fh, ">>", $log) or POSIX::_exit(1);
    print $fh "# Accounting: time=" . ($t1 - $t0) . " threads=$num_threads\n";
    print $fh "# Ended (code $ret) at " . localtime($t1) . ", elapsed time " . ($t1 - $t0) . " seconds\n";
    close $fh;
    POSIX::_exit($ret > 255 ? 255 : $ret);
  }
  $running{$pid} = $id;
}

sub reap_one {
  my $pid = waitpid(-1, 0);
  return if $pid <= 0;
  if (exists $running{$pid}) {
    my $id = delete $running{$pid};
    $status{$id} = $? & 127 ? 128 + ($? & 127) : $? >> 8;
  }
}

for my $id ($first .. $last) {
  last if $interrupted;
  reap_one() while $max_jobs_run > 0 && keys(%running) >= $max_jobs_run;
  last if $interrupted;
  start_job($id);
}
reap_one() while keys %running;

my @failed = grep { !defined $status{$_} || $status{$_} != 0 } ($first .. $last);
my $n = $last - $first + 1;
if ($interrupted) {
  print STDERR "$me: interrupted; " . scalar(@failed) . " / $n jobs did not finish\n";
  exit 1;
}
if (@failed) {
  my $log = subst($logpat, $failed[-1]);
  print STDERR "$me: " . scalar(@failed) . " / $n failed, log is in $log\n";
  exit 1;
}
exit 0;
