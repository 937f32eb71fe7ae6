"""Inference engine: the Enhancer (audio of any length in bounded memory, VAD out), network backends
(torch, TorchScript, ONNX Runtime), batch enhancement, output level rules and settings tuned on validation.
"""
