"""The autouse fixture of conftest.py restores global state: the first test changes it, the second
(run after it, in file order) sees it restored."""
import logging
import random

import numpy as np
import torch

import conftest

_seen = {}


def test_a_test_that_changes_global_state():
    _seen["rng"] = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    torch.set_num_threads(1 if conftest._SESSION_THREADS != 1 else 2)
    logging.getLogger("csmvanet").addHandler(logging.NullHandler())
    logging.getLogger("csmvanet").setLevel(logging.DEBUG)
    logging.disable(logging.CRITICAL)


def test_the_next_test_finds_it_restored():
    assert torch.get_num_threads() == conftest._SESSION_THREADS
    lg = logging.getLogger("csmvanet")
    assert not any(isinstance(h, logging.NullHandler) for h in lg.handlers)
    assert lg.level != logging.DEBUG and logging.root.manager.disable == 0
    # the RNGs are where the previous test started: the same draws again
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == _seen["rng"]
