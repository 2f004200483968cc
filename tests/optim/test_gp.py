import numpy as np
import pytest
import torch

from harness.optim.gp import PosteriorCache, fit_outputs


@pytest.mark.parametrize("n", [37, 48])  # 48: a multiple of the padding width
def test_batched_marginal_matches_botorch_posterior(n):
    rng = np.random.default_rng(n)
    X = rng.random((n, 5))
    Y = np.c_[np.sin(6 * X[:, 0]) + X[:, 1], (X**2).sum(1)]
    model = fit_outputs(X, Y, maxiter=20)
    cache = PosteriorCache(model)
    S = torch.rand(4500, 5, generator=torch.Generator().manual_seed(1))  # several chunks
    with torch.no_grad():
        post = model.posterior(S.double())
    ref_mean, ref_sd = post.mean, post.variance.sqrt()
    mu, sd = cache.marginal(S.double(), dtype=torch.double)
    assert torch.allclose(mu, ref_mean, atol=1e-6)
    assert torch.allclose(sd, ref_sd, atol=1e-6)
    mu32, sd32 = cache.marginal(S, dtype=torch.float32)
    scale = ref_mean.abs().max()
    assert (mu32.double() - ref_mean).abs().max() < 1e-4 * scale
    assert (sd32.double() - ref_sd).abs().max() < 1e-4 * scale
