import pytest

# A small CSM-VANet used wherever the paper's size is not the point of a test.
TINY_CONFIG = {
    "stft": {"n_fft": 400, "win_length": 400, "hop_length": 100, "compress": 0.3, "sample_rate": 16000},
    "model": {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7,
              "dropout": 0.0},
    "loss": {"time": 0.2, "mag": 0.8, "ri": 0.2, "vad": 0.1},
}


@pytest.fixture
def tiny_config():
    import copy

    return copy.deepcopy(TINY_CONFIG)
