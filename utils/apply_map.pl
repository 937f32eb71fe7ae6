#!/usr/bin/env perl
# Replaces fields of standard input by their values in a map, as Kaldi's apply_map.pl:
#
#   utils/apply_map.pl [-f RANGE] [--permissive] map < in > out
#
# Each map line is "key value..."; a key maps to the rest of its line (words joined by one space;
# the last line of a key wins). Each input line is split on white space; the fields in RANGE
# (1-based: "2", "2-4", "3-" or "-2"; ':' may stand for '-') are replaced by their mapped value, the
# others kept, and the words are written joined by single spaces. A field with no entry in the map is
# an error naming it (non-zero exit; what was already written stays on the output, as in Kaldi); with
# --permissive it is kept, with a warning on stderr. The options may come in either order.
use strict;
use warnings;

my ($from, $to, $permissive);
while (@ARGV && $ARGV[0] =~ /^-/) {
  my $o = shift @ARGV;
  if ($o eq "--permissive") { $permissive = 1; next; }
  if ($o eq "-f") {
    my $r = shift @ARGV // "";
    if ($r =~ /^(\d+)$/) { ($from, $to) = ($1, $1); }
    elsif ($r =~ /^(\d*)[-:](\d*)$/ && ($1 ne "" || $2 ne "")) {
      $from = $1 ne "" ? $1 : undef;
      $to = $2 ne "" ? $2 : undef;
    }
    else { die "apply_map.pl: bad field range '$r' for -f (e.g. 1, 2-4, 3-, -2)\n"; }
    next;
  }
  die "apply_map.pl: unknown option $o (usage: apply_map.pl [-f RANGE] [--permissive] map < in > out)\n";
}
if (@ARGV != 1) {
  print STDERR "Usage: apply_map.pl [-f RANGE] [--permissive] map < in > out\n";
  exit 1;
}
my $map_file = $ARGV[0];
open(my $m, "<", $map_file) or die "apply_map.pl: cannot read $map_file: $!\n";
my %map;
while (my $line = <$m>) {
  my @w = split(" ", $line);
  die "apply_map.pl: $map_file line $.: empty line\n" unless @w;
  my $k = shift @w;
  $map{$k} = join(" ", @w);
}
close $m;
while (my $line = <STDIN>) {
  my @w = split(" ", $line);
  for my $i (0 .. $#w) {
    my $pos = $i + 1;
    next if (defined $from && $pos < $from) || (defined $to && $pos > $to);
    if (exists $map{$w[$i]}) { $w[$i] = $map{$w[$i]}; }
    elsif ($permissive) { print STDERR "apply_map.pl: warning: key '$w[$i]' is not in $map_file; kept\n"; }
    else { die "apply_map.pl: key '$w[$i]' (line $., field $pos) is not in $map_file\n"; }
  }
  print join(" ", @w), "\n";
}
