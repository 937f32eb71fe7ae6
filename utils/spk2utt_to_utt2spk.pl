#!/usr/bin/env perl
# spk2utt ("spk utt1 utt2 ..." lines) -> utt2spk ("utt spk" lines), sorted by utterance (C locale).
#
#   utils/spk2utt_to_utt2spk.pl data/x/spk2utt > data/x/utt2spk
use strict;
use warnings;

my @pairs;
while (<>) {
  my ($s, @u) = split;
  next unless defined $s;
  push @pairs, map { [$_, $s] } @u;
}
print "$_->[0] $_->[1]\n" for sort { $a->[0] cmp $b->[0] } @pairs;
