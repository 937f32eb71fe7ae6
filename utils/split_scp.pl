#!/usr/bin/env perl
# Splits a key-value list (scp, utt2spk, ...) into parts, as Kaldi's split_scp.pl:
#
#   utils/split_scp.pl [--utt2spk=utt2spk] in.scp out.1.scp ... out.N.scp
#   utils/split_scp.pl -j N k [--one-based] [--utt2spk=utt2spk] in.scp [out.scp]
#
# Without --utt2spk: contiguous runs of the input lines, the first (lines % N) parts one line longer.
# With --utt2spk (also spelt --utt2spk FILE): whole speakers per part, balanced by line count as
# Kaldi does. -j N k writes only part k (0-based; 1-based with --one-based) to out.scp or stdout.
# An empty part (more parts than lines or speakers) is an error, and then nothing is written.
# The logic is in the package: python -m csmvanet.bin.datadir_utils split_scp.
use strict;
use warnings;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = dirname(dirname(abs_path($0)));
my $python = $ENV{CSMVANET_PYTHON} || (-x "$root/tools/venv/bin/python" ? "$root/tools/venv/bin/python" : "python3");
exec($python, "-m", "csmvanet.bin.datadir_utils", "split_scp", @ARGV) or die "split_scp.pl: cannot run $python: $!\n";
