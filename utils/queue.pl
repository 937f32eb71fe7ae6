#!/usr/bin/env perl
# Kaldi's queue.pl interface for a machine without Grid Engine: the jobs run here, through
# utils/run.pl (same logs, exit status and JOB=1:N handling).
#
#   utils/queue.pl [options] [JOB=1:N] log/x.JOB.log command args...
#
# Options run.pl has (--max-jobs-run, --num-threads, --gpu, --mem, --time; --opt value or
# --opt=value) are passed to it. Grid Engine settings mean nothing here and are dropped with one
# notice on stderr: --config FILE, --name N (ESPnet's job name), other --options with a value, and
# qsub's own options (-q Q, -l RES, -pe ENV N, -sync y, -V, ...). The options may come before or
# after JOB=1:N, as with Kaldi's queue.pl. For a real cluster use utils/slurm.pl (same interface) or
# Kaldi's own queue.pl.
use strict;
use warnings;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my %to_run = map { $_ => 1 } qw(max-jobs-run num-threads gpu mem time);
my (@pass, @dropped, $range);
for my $round (1 .. 2) {  # options, then JOB=a:b, then options again
  while (@ARGV >= 2 && $ARGV[0] =~ /^-/) {
    my $o = shift @ARGV;
    if ($o eq "-V") { push @dropped, $o; next; }
    my $v;
    if ($o =~ /^(--[^=]+)=(.*)$/s) { ($o, $v) = ($1, $2); }
    else { $v = shift @ARGV; }
    if ($o eq "-pe") { push @dropped, "$o $v " . (shift(@ARGV) // ""); next; }
    (my $name = $o) =~ s/^--//;
    $name =~ s/_/-/g;
    if ($o =~ /^--/ && $to_run{$name}) { push @pass, "--$name", $v; }
    else { push @dropped, "$o $v"; }
  }
  if (!defined $range && @ARGV && $ARGV[0] =~ /^[A-Za-z_]\w*=\d+(:\d+)?$/) { $range = shift @ARGV; }
}
if (@ARGV < 2) {
  print STDERR "Usage: queue.pl [options] [JOB=1:N] log/x.JOB.log command args... (runs locally via run.pl)\n";
  exit 1;
}
print STDERR "queue.pl: no Grid Engine here: running locally with run.pl, ignoring: @dropped\n" if @dropped;
my $run = dirname(abs_path($0)) . "/run.pl";
exec($run, @pass, (defined $range ? ($range) : ()), @ARGV) or die "queue.pl: cannot run $run: $!\n";
