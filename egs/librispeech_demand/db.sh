# Corpus roots: edit for your site, set in the environment, or override on the command line
# (./run.sh --librispeech_root DIR --demand_root DIR). Stage 0 downloads into these folders what is
# not there.
#
# LIBRISPEECH: the folder holding LibriSpeech/ (as the OpenSLR 12 tarballs unpack):
#   $LIBRISPEECH/LibriSpeech/{train-clean-100,dev-clean,test-clean,...}/<spk>/<chapter>/*.flac
# DEMAND: the folder holding the 18 environments, 16 kHz: $DEMAND/<ENV>/ch01.wav ... ch16.wav
LIBRISPEECH=${LIBRISPEECH:-downloads}
DEMAND=${DEMAND:-downloads/DEMAND}
