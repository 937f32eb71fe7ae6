"""Ground floor: what every other floor stands on, with no audio or model knowledge.

Provenance (version), error types, utterance keys, atomic file writing, YAML configs with overrides,
random number generators, process memory, the worker pool, interrupt handling (SIGTERM/SIGINT),
output folders and Kaldi scp pipe commands.
"""
