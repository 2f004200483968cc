"""Shared settings: small strategy options so the whole default run stays fast."""

import pytest
import torch

# options that keep each strategy's proposal well under a second on small problems
FAST_OPTIONS = {
    "ars": {"n_directions": 100, "iterations": 3, "mc_samples": 8},
    "parego": {"num_restarts": 1, "raw_samples": 16, "maxiter": 20},
    "nehvi": {"num_restarts": 1, "raw_samples": 16, "maxiter": 20},
    "turbo": {"n_candidates": 256},
    "morbo": {"n_candidates": 256},
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
