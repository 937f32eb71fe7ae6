"""Files made before the subpackage layout keep loading and decode the same: an experiment dir
(config.yaml, inference.yaml, a checkpoint) and its packed model, written by the csmvanet of 79a6b86
(test/data/before_layout/make.py), give today the output that code gave then."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.experiment.model_files import load_model_files
from csmvanet.infer.enhancer import Enhancer

DATA = Path(__file__).parent / "data" / "before_layout"


@pytest.mark.parametrize("source", ["packed.pth", "exp"])
def test_files_from_before_the_layout_decode_as_they_did(source):
    x, sr = sf.read(DATA / "noisy.wav", dtype="float32")
    enh = Enhancer.from_pretrained(DATA / source, segment_seconds=0.512, overlap_seconds=0.128)
    # the settings stored then (inference.yaml, copied into the packed metadata) are the ones used now
    assert (enh.vad_floor, enh.vad_threshold, enh.input_mix, enh.snr_limit) == (0.2, 0.4, 0.05, 30.0)
    y, vad = enh.enhance(x, sr)
    want = np.load(DATA / "enhanced.npy")[0]
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, atol=1e-6)
    np.testing.assert_allclose(vad, np.load(DATA / "vad.npy"), atol=1e-6)


def test_the_packed_file_from_before_is_checked_and_intact():
    """It is the file made then (its bytes' sha256), and today's reader verifies its own sha256 (format 2:
    weights, config and metadata) and reads the provenance and settings it carries."""
    assert hashlib.sha256((DATA / "packed.pth").read_bytes()).hexdigest() == PACKED_SHA256
    config, state, meta = load_model_files(DATA / "packed.pth")
    assert meta["git_hash"].startswith("79a6b86") and meta["inference"]["vad_floor"] == 0.2
    assert config["model"]["vad_floor"] == 0.1 and state


PACKED_SHA256 = "53aed77641e6d6a27cb717ac2e991f52f82d29824dbb417b79545b26607418e4"
