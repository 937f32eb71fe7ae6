#!/usr/bin/env perl
# Splits a key-value list (scp, utt2spk, ...) into N parts, for running a stage with --nj N.
#
#   utils/split_scp.pl [--utt2spk utt2spk] in.scp out.1.scp out.2.scp ... out.N.scp
#
# The parts are contiguous runs of the input, in input order, with sizes as equal as possible
# (deterministic: the same input always gives the same parts). With --utt2spk, all lines of one
# speaker go to the same part (the parts are then balanced by line count over whole speakers);
# every key of in.scp must be in utt2spk. Every part gets at least one line: asking for more parts
# than lines (or speakers) is an error. Each output is written under a temporary name and renamed.
use strict;
use warnings;

my $me = "split_scp.pl";
my $utt2spk = "";
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $o = shift @ARGV;
  if ($o =~ /^--utt2spk=(.*)$/) { $utt2spk = $1; }
  elsif ($o eq "--utt2spk") { $utt2spk = shift @ARGV // die "$me: --utt2spk needs a file\n"; }
  elsif ($o eq "--") { last; }
  else { die "$me: unknown option $o\n"; }
}
if (@ARGV < 2) {
  print STDERR "Usage: $me [--utt2spk utt2spk] in.scp out.1.scp ... out.N.scp\n";
  exit 1;
}
my ($in, @outs) = @ARGV;
my $n = @outs;

open(my $fh, "<", $in) or die "$me: cannot read $in: $!\n";
my @lines = grep { /\S/ } <$fh>;
close $fh;

# Groups of line indices: one per speaker (in order of first appearance), or one per line.
my @groups;
if ($utt2spk ne "") {
  open(my $u, "<", $utt2spk) or die "$me: cannot read $utt2spk: $!\n";
  my %spk;
  while (<$u>) {
    my ($utt, $s) = split;
    next unless defined $utt;
    die "$me: $utt2spk:$.: no speaker for '$utt'\n" unless defined $s;
    $spk{$utt} = $s;
  }
  close $u;
  my %gi;
  for my $i (0 .. $#lines) {
    my ($key) = split(' ', $lines[$i]);
    my $s = $spk{$key};
    die "$me: $in: key '$key' is not in $utt2spk\n" unless defined $s;
    $gi{$s} = push(@groups, []) - 1 unless exists $gi{$s};
    push @{$groups[$gi{$s}]}, $i;
  }
} else {
  @groups = map { [$_] } 0 .. $#lines;
}
my $g = @groups;
my $what = $utt2spk ne "" ? "speakers" : "lines";
die "$me: cannot split $in into $n parts: it has only $g $what\n" if $g < $n;

# Part of each group: the one holding the middle of the group (balanced sizes), kept monotone,
# gap-free, and leaving enough groups for the parts after it.
my $total = @lines;
my @part_of_line;
my ($prev, $before) = (-1, 0);
for my $k (0 .. $g - 1) {
  my $size = @{$groups[$k]};
  my $p = int(($before + $size / 2) * $n / $total);
  my $lo = $prev > $n - ($g - $k) ? $prev : $n - ($g - $k);
  $lo = 0 if $lo < 0;
  my $hi = $prev + 1;
  $p = $lo if $p < $lo;
  $p = $hi if $p > $hi;
  $part_of_line[$_] = $p for @{$groups[$k]};
  $prev = $p;
  $before += $size;
}

for my $p (0 .. $n - 1) {
  my $out = $outs[$p];
  open(my $o, ">", "$out.tmp.$$") or die "$me: cannot write $out: $!\n";
  for my $i (0 .. $#lines) { print $o $lines[$i] if $part_of_line[$i] == $p; }
  close $o or die "$me: cannot write $out: $!\n";
  rename("$out.tmp.$$", $out) or die "$me: cannot write $out: $!\n";
}
