# Corpus roots. Each is set here with a default and can be overridden per site from the
# environment (CORPUS=/data/mycorpus ./run.sh) or, where run.sh exposes it, on the command line.
# PLACEHOLDER: rename CORPUS after your corpus (e.g. VOICEBANK) and document its expected layout:
#
# CORPUS: the folder holding the unpacked corpus, e.g. clean/ noisy/ lists/
CORPUS=${CORPUS:-downloads/corpus}
