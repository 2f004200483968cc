"""Shared test configuration: single-threaded torch keeps CPU tests fast and stable."""

import torch

torch.set_num_threads(1)
