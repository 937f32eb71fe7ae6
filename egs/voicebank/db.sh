# Corpus roots: edit for your site, set in the environment, or override on the command line
# (./run.sh --voicebank_root DIR). Stage 0 downloads into this folder when the corpus is not there.
#
# VOICEBANK: the folder holding the unpacked VoiceBank+DEMAND zips (DOI 10.7488/ds/2117):
#   clean_trainset_28spk_wav/ noisy_trainset_28spk_wav/ clean_testset_wav/ noisy_testset_wav/
#   trainset_28spk_txt/ testset_txt/ logfiles/
VOICEBANK=${VOICEBANK:-downloads/VoiceBank-DEMAND}
