#!/usr/bin/env perl
# Keeps the lines whose field F (default 1, the key) is the first field of a line of id_list, in
# input order, as Kaldi's filter_scp.pl; --exclude keeps the others instead.
#
#   utils/filter_scp.pl [--exclude] [-f F] id_list [in.scp] > out.scp
use strict;
use warnings;

my ($exclude, $field) = (0, 1);
while (@ARGV && $ARGV[0] =~ /^-/) {
  my $o = shift @ARGV;
  if ($o eq "--exclude") { $exclude = 1; }
  elsif ($o eq "-f") {
    $field = shift @ARGV // "";
    die "filter_scp.pl: -f needs a field number (1 = first), not '$field'\n" unless $field =~ /^[1-9]\d*$/;
  }
  else { die "filter_scp.pl: unknown option $o (usage: filter_scp.pl [--exclude] [-f F] id_list [in.scp])\n"; }
}
if (@ARGV < 1 || @ARGV > 2) {
  print STDERR "Usage: filter_scp.pl [--exclude] [-f F] id_list [in.scp] > out.scp\n";
  exit 1;
}
my $list = shift @ARGV;
open(my $l, "<", $list) or die "filter_scp.pl: cannot read $list: $!\n";
my %keep;
while (<$l>) { my ($k) = split; $keep{$k} = 1 if defined $k; }
close $l;
while (<>) {
  my @a = split;
  next unless @a;
  die "filter_scp.pl: line $. has fewer than $field fields: $_" if @a < $field;
  print if $exclude xor exists $keep{$a[$field - 1]};
}
