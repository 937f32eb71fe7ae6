"""csmvanet: CSM-VANet speech enhancement with ESPnet-style recipes."""
import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "csmvanet" / "base" / "version.py").read_text()).group(1)

entry_points = {
    "console_scripts": [
        "csmvanet-info=csmvanet.bin.info:main",
        "csmvanet-train=csmvanet.bin.train:main",
        "csmvanet-enhance=csmvanet.bin.enhance:main",
        "csmvanet-score=csmvanet.bin.score:main",
        "csmvanet-vad-labels=csmvanet.bin.vad_labels:main",
        "csmvanet-simulate=csmvanet.bin.simulate:main",
        "csmvanet-average=csmvanet.bin.average:main",
        "csmvanet-pack=csmvanet.bin.pack:main",
        "csmvanet-resample=csmvanet.bin.resample:main",
        "csmvanet-export=csmvanet.bin.export:main",
        "csmvanet-tune-inference=csmvanet.bin.tune_inference:main",
        "csmvanet-perturb=csmvanet.bin.perturb:main",
    ]
}

setup(
    name="csmvanet",
    version=version,
    description="CSM-VANet: two-stage speech enhancement with complex spectrum mapping and VAD",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["csmvanet", "csmvanet.*"]),
    # the bundled pretrained models and their model card (csmvanet/experiment/model_files.py: BUNDLED_MODELS)
    package_data={"csmvanet": ["pretrained/*.pth", "pretrained/README.md"]},
    install_requires=[
        "torch>=2.1",
        "numpy>=1.22",
        "soundfile>=0.12",
        "soxr>=0.3",
        "pyyaml>=6.0",
        "kaldiio>=2.18",
        "pesq>=0.0.4",
        "pystoi>=0.4",
        "tqdm>=4.60",
    ],
    extras_require={
        # matplotlib: report figures and training curves; tensorboard: event files.
        "report": ["matplotlib>=3.5", "tensorboard>=2.10"],
        # onnx: ONNX export (csmvanet-export) and the onnxruntime inference backend.
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
        "test": ["pytest>=7", "matplotlib>=3.5", "tensorboard>=2.10", "onnx>=1.14", "onnxruntime>=1.16"],
    },
    entry_points=entry_points,
)
