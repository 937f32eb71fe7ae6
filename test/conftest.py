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


# ------------------------------------------------------------------ global state left as found
def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# Captured when pytest loads this file, before any test module (or module-scoped fixture) runs.
_SESSION_THREADS = _torch_threads()


def _own(handlers) -> list:
    """Handlers not installed by pytest itself (its log capture comes and goes with each phase)."""
    return [h for h in handlers if not type(h).__module__.startswith("_pytest")]


def _logging_state() -> dict:
    import logging

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    return {lg.name: (lg.level, _own(lg.handlers), lg.propagate, lg.disabled) for lg in loggers}


@pytest.fixture(autouse=True)
def _restore_global_state():
    """After every test: torch threads back to the session's start value, the logging configuration
    and the RNG states (python, numpy, torch) as before the test, so that no test (or a fixture it
    uses, e.g. one setting torch threads to 1) changes the ones after it."""
    import logging
    import random

    import numpy as np
    import torch

    logs = _logging_state()
    disable = logging.root.manager.disable
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    yield
    torch.set_num_threads(_SESSION_THREADS)
    for name, lg in [("root", logging.getLogger())] + list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger):
            continue
        # a logger first made during the test goes back to a new logger's state
        level, handlers, propagate, disabled = logs.get(lg.name, (logging.NOTSET, [], True, False))
        for h in _own(lg.handlers):
            if h not in handlers:
                lg.removeHandler(h)
        for h in handlers:
            if h not in lg.handlers:
                lg.addHandler(h)
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled
    logging.disable(disable)
    random.setstate(rng[0])
    np.random.set_state(rng[1])
    torch.set_rng_state(rng[2])
