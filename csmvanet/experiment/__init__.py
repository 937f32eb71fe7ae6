"""Experiment floor: a trained model as files.

The training config resolved once into typed sections (:mod:`.resolved_config`), checkpoint files,
experiment dirs and packed models (:mod:`.model_files`, :mod:`.packing`), the inference settings a model
carries (:mod:`.inference_settings`) and ONNX export (:mod:`.onnx_export`).
"""
