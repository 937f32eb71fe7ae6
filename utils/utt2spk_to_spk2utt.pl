#!/usr/bin/env perl
# utt2spk ("utt spk" lines) -> spk2utt ("spk utt1 utt2 ..." lines), speakers sorted (C locale),
# each speaker's utterances in the order of the input.
#
#   utils/utt2spk_to_spk2utt.pl data/x/utt2spk > data/x/spk2utt
use strict;
use warnings;

my (%utts, @order);
while (<>) {
  my ($u, $s, @rest) = split;
  next unless defined $u;
  die "utt2spk_to_spk2utt.pl: line $.: expected 'utt spk', got: $_" unless defined $s && !@rest;
  push @order, $s unless exists $utts{$s};
  push @{$utts{$s}}, $u;
}
print "$_ @{$utts{$_}}\n" for sort @order;
