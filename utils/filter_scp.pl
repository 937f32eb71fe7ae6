#!/usr/bin/env perl
# Keeps the lines of a key-value list whose key (first field) is listed in id_list (first field of
# each line there), in the order of the input. --exclude keeps the others instead.
#
#   utils/filter_scp.pl [--exclude] id_list in.scp > out.scp
#   utils/filter_scp.pl [--exclude] id_list < in.scp > out.scp
use strict;
use warnings;

my $exclude = 0;
if (@ARGV && $ARGV[0] eq "--exclude") { $exclude = 1; shift @ARGV; }
if (@ARGV < 1 || @ARGV > 2 || $ARGV[0] =~ /^--/) {
  print STDERR "Usage: filter_scp.pl [--exclude] id_list [in.scp] > out.scp\n";
  exit 1;
}
my $list = shift @ARGV;
open(my $l, "<", $list) or die "filter_scp.pl: cannot read $list: $!\n";
my %keep;
while (<$l>) { my ($k) = split; $keep{$k} = 1 if defined $k; }
close $l;
while (<>) {
  my ($k) = split;
  next unless defined $k;
  print if $exclude xor exists $keep{$k};
}
