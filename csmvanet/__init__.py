"""CSM-VANet speech enhancement toolkit."""
from csmvanet.version import __version__

__all__ = ["__version__"]
