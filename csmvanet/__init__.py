"""CSM-VANet speech enhancement toolkit."""
from csmvanet.base.version import __version__

__all__ = ["__version__", "Enhancer"]


def __getattr__(name):
    # Lazy: `import csmvanet` stays cheap (no torch); `from csmvanet import Enhancer` loads it on use.
    if name == "Enhancer":
        from csmvanet.infer.enhancer import Enhancer

        return Enhancer
    raise AttributeError(f"module 'csmvanet' has no attribute {name!r}")
