"""Gaussian-process models shared by the model-based strategies.

`fit_outputs` fits one BoTorch `SingleTaskGP` per output (standardized
outputs, inputs already in the unit cube) by maximizing the marginal
likelihood with `fit_gpytorch_mll`, and returns them as a `ModelListGP`.

`PosteriorCache` holds, per output, the solves that prediction needs
(Cholesky factor of the training covariance, its inverse, the weight vector),
computed once per fit. It then gives

* the posterior marginal mean and variance of very many points in one
  batched call (two matrix products per output, optionally in float32); this
  is what ARS-MOBO scores its L x 2N x H rollout states with, and
* joint posterior samples on a few thousand candidates (Thompson sampling
  for TuRBO and MORBO).

Pending points (asked, not yet told) enter as "kriging believer" fantasies:
they are added to the training data with the posterior mean as their value,
with the fitted hyperparameters kept, which shrinks the variance around them
so parallel workers are steered elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood

log = logging.getLogger(__name__)


@contextlib.contextmanager
def single_threaded(threads: int = 1):
    """Run torch work with `threads` intra-op threads and restore the previous setting.

    Small batched Cholesky factorizations in GP fitting are several times
    slower with two threads than with one on the 2-core reference machine.
    """
    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def available_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without CPU affinity
        return max(1, os.cpu_count() or 1)


def fit_outputs(
    X: np.ndarray, Y: np.ndarray, previous: ModelListGP | None = None, maxiter: int = 200
) -> ModelListGP:
    """Fit one SingleTaskGP per column of `Y` (n x m) on `X` (n x d, rows in the unit cube).

    When `previous` (the models of the last proposal, same outputs) is given,
    its hyperparameters are the starting point of the fit, which cuts the
    number of L-BFGS iterations several-fold as the data grow by a few points
    per proposal. `maxiter` caps the L-BFGS iterations of each fit.
    """
    Xt = torch.as_tensor(np.asarray(X, dtype=float), dtype=torch.double)
    Yt = torch.as_tensor(np.asarray(Y, dtype=float), dtype=torch.double)
    models = []
    for j in range(Yt.shape[-1]):
        with warnings.catch_warnings():
            # constant outputs (e.g. a constraint that never varied) trigger a
            # standardization warning; Standardize copes with them
            warnings.simplefilter("ignore")
            model = SingleTaskGP(Xt, Yt[:, j : j + 1], outcome_transform=Standardize(m=1))
            if previous is not None and j < len(previous.models):
                _copy_hyperparameters(previous.models[j], model)
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
            except Exception as err:  # keep the prior hyperparameters rather than stop a study
                log.warning("GP fit for output %d failed (%s); using initial hyperparameters", j, err)
        model.eval()
        models.append(model)
    return ModelListGP(*models)


def _copy_hyperparameters(source: SingleTaskGP, target: SingleTaskGP) -> None:
    """Copy raw hyperparameters (not data, not outcome-transform statistics)."""
    src = dict(source.named_parameters())
    with torch.no_grad():
        for name, param in target.named_parameters():
            if name in src and src[name].shape == param.shape:
                param.copy_(src[name])


class _OutputCache:
    """Prediction caches of one fitted SingleTaskGP (transformed output space)."""

    def __init__(self, model: SingleTaskGP, X_extra: torch.Tensor | None = None):
        kernel = model.covar_module
        self.outputscale = 1.0
        if isinstance(kernel, ScaleKernel):
            self.outputscale = float(kernel.outputscale.detach().reshape(-1)[0])
            kernel = kernel.base_kernel
        self.kind = None
        if kernel.active_dims is None:
            if isinstance(kernel, RBFKernel):
                self.kind = "rbf"
            elif isinstance(kernel, MaternKernel) and kernel.nu in (0.5, 1.5, 2.5):
                self.kind = f"matern{kernel.nu}"
        self.covar_module = model.covar_module
        self.lengthscale = (
            kernel.lengthscale.detach().reshape(-1).double() if self.kind else None
        )
        mean_module = model.mean_module
        self.mean_module = mean_module
        self.constant = (
            float(mean_module.constant.detach().reshape(-1)[0])
            if isinstance(mean_module, ConstantMean)
            else None
        )
        tf = model.outcome_transform
        self.y_mean = float(tf.means.detach().reshape(-1)[0])
        self.y_std = float(tf.stdvs.detach().reshape(-1)[0])
        noise = model.likelihood.noise.detach().double().reshape(-1)
        self.noise = float(noise.mean())
        X = model.train_inputs[0].detach().double()
        y = model.train_targets.detach().double()
        self._set_data(X, y)
        if X_extra is not None and X_extra.shape[0]:
            mu, _ = self.predict(X_extra.double(), dtype=torch.double, transformed=True)
            self._set_data(torch.cat([X, X_extra.double()]), torch.cat([y, mu]))
        self._cast = {}

    # kernel ---------------------------------------------------------------
    def kernel(self, A: torch.Tensor, B: torch.Tensor, B_scaled=None) -> torch.Tensor:
        """Kernel matrix (len(A) x len(B)) in the dtype of A."""
        if self.kind is None:
            with torch.no_grad():
                return self.covar_module(A.double(), B.double()).to_dense().to(A.dtype)
        ls = self.lengthscale.to(A.dtype)
        As = A / ls
        Bs = B / ls if B_scaled is None else B_scaled
        d2 = torch.addmm((Bs * Bs).sum(-1).unsqueeze(0), As, Bs.T, alpha=-2.0)
        d2.add_((As * As).sum(-1, keepdim=True)).clamp_(min=0.0)
        return self._from_sq_dist(d2)

    def prior_mean(self, X: torch.Tensor) -> torch.Tensor:
        if self.constant is not None:
            return torch.full(X.shape[:-1], self.constant, dtype=X.dtype)
        with torch.no_grad():
            return self.mean_module(X.double()).to(X.dtype)

    def prior_var(self, X: torch.Tensor) -> torch.Tensor:
        if self.kind is not None:
            return torch.full(X.shape[:-1], self.outputscale, dtype=X.dtype)
        with torch.no_grad():
            return self.covar_module(X.double(), diag=True).to(X.dtype)

    def _set_data(self, X: torch.Tensor, y: torch.Tensor) -> None:
        n = X.shape[0]
        K = self.kernel(X, X) + self.noise * torch.eye(n, dtype=X.dtype)
        jitter = 0.0
        for _ in range(6):
            L, info = torch.linalg.cholesky_ex(K + jitter * torch.eye(n, dtype=X.dtype))
            if int(info) == 0:
                break
            jitter = 1e-8 if jitter == 0.0 else jitter * 10
        self.X = X
        self.L = L
        resid = (y - self.prior_mean(X)).unsqueeze(-1)
        self.alpha = torch.cholesky_solve(resid, L).squeeze(-1)
        self.Linv_T = torch.linalg.solve_triangular(L, torch.eye(n, dtype=X.dtype), upper=False).T
        self._cast = {}

    def _tensors(self, dtype):
        if dtype not in self._cast:
            X = self.X.to(dtype)
            scaled = X / self.lengthscale.to(dtype) if self.kind else None
            self._cast[dtype] = (X, self.alpha.to(dtype), self.Linv_T.to(dtype), scaled)
        return self._cast[dtype]

    def _padded(self, dtype):
        """(scaled inputs, their squared norms, W) with the training set padded to a multiple of 16.

        W (p x p, zero-padded) contains L^-T in its first n columns and the
        weight vector alpha in column n, so one matrix product K_s W gives
        both the variance reduction and the mean. Padding changes no value
        (the extra rows of W are zero); it makes the product about 1.7 times
        faster on the reference machine, where MKL is slow for n = 150.
        """
        key = ("padded", dtype)
        if key not in self._cast:
            n = self.X.shape[0]
            p = (n // 16 + 1) * 16  # at least one free column for alpha
            W = torch.zeros(p, p, dtype=torch.double)
            W[:n, :n] = self.Linv_T
            W[:n, n] = self.alpha
            scaled = torch.zeros(p, self.X.shape[1], dtype=torch.double)
            scaled[:n] = self.X / self.lengthscale
            self._cast[key] = (scaled.to(dtype), (scaled * scaled).sum(-1).to(dtype), W.to(dtype))
        return self._cast[key]

    def predict(self, X: torch.Tensor, dtype=torch.float32, transformed: bool = False, chunk: int = 2048):
        """Posterior marginal mean and variance of the latent function at the rows of X.

        Stationary kernels with a constant mean (the models `fit_outputs`
        builds) take a chunked path: blocks of `chunk` rows keep the kernel
        matrix in cache, and one product per block gives mean and variance.
        Other models take the direct path.
        """
        X = X.to(dtype)
        if self.kind is None or self.constant is None:
            return self._predict_direct(X, dtype, transformed)
        Bs, bb, W = self._padded(dtype)
        n = self.X.shape[0]
        As = X / self.lengthscale.to(dtype)
        aa = (As * As).sum(-1, keepdim=True)
        mean = torch.empty(X.shape[0], dtype=dtype)
        var = torch.empty(X.shape[0], dtype=dtype)
        for s in range(0, X.shape[0], chunk):
            e = min(s + chunk, X.shape[0])
            K = torch.addmm(bb.unsqueeze(0), As[s:e], Bs.T, alpha=-2.0)
            K = self._from_sq_dist(K.add_(aa[s:e]).clamp_(min=0.0))
            out = K @ W  # padded columns of K meet zero rows of W
            mean[s:e] = out[:, n]
            V = out[:, :n]
            var[s:e] = V.mul_(V).sum(-1)
        mean.add_(self.constant)
        var = torch.sub(self.outputscale, var).clamp_(min=1e-10)
        if transformed:
            return mean, var
        return mean * self.y_std + self.y_mean, var * (self.y_std**2)

    def _from_sq_dist(self, d2: torch.Tensor) -> torch.Tensor:
        """Kernel values (outputscale included) from squared scaled distances, in place."""
        if self.kind == "rbf":
            out = d2.mul_(-0.5).exp_()
        else:
            r = d2.sqrt_()
            if self.kind == "matern0.5":
                out = r.neg_().exp_()
            elif self.kind == "matern1.5":
                s = r.mul_(math.sqrt(3.0))
                out = torch.exp(-s).mul_(s.add_(1.0))
            else:
                s = r.mul_(math.sqrt(5.0))
                e = torch.exp(-s)
                out = s.mul(s).div_(3.0).add_(s).add_(1.0).mul_(e)
        return out.mul_(self.outputscale) if self.outputscale != 1.0 else out

    def _predict_direct(self, X: torch.Tensor, dtype, transformed: bool):
        Xt, alpha, Linv_T, scaled = self._tensors(dtype)
        Ks = self.kernel(X, Xt, scaled)
        mean = self.prior_mean(X) + Ks @ alpha
        V = Ks @ Linv_T
        var = (self.prior_var(X) - torch.einsum("ij,ij->i", V, V)).clamp_(min=1e-10)
        if transformed:
            return mean, var
        return mean * self.y_std + self.y_mean, var * (self.y_std**2)

    def joint_samples(self, X: torch.Tensor, n_samples: int, generator: torch.Generator):
        """Joint posterior samples (n_samples x len(X)) of the latent function, original units."""
        X = X.double()
        Xt, alpha, Linv_T, scaled = self._tensors(torch.double)
        Ks = self.kernel(X, Xt, scaled)
        mean = self.prior_mean(X) + Ks @ alpha
        V = Ks @ Linv_T
        cov = self.kernel(X, X) - V @ V.T
        cov = 0.5 * (cov + cov.T)
        n = X.shape[0]
        jitter = 1e-9
        for _ in range(8):
            Lc, info = torch.linalg.cholesky_ex(cov + jitter * torch.eye(n, dtype=X.dtype))
            if int(info) == 0:
                break
            jitter *= 10
        else:  # fall back on independent marginals
            Lc = torch.diag(cov.diagonal().clamp(min=1e-10).sqrt())
        z = torch.randn(n, n_samples, generator=generator, dtype=X.dtype)
        f = mean.unsqueeze(-1) + Lc @ z
        return (f.T * self.y_std + self.y_mean)


class PosteriorCache:
    """Prediction caches for every output of a `ModelListGP`."""

    def __init__(self, model: ModelListGP, X_pending: np.ndarray | None = None):
        Xp = None
        if X_pending is not None and len(X_pending):
            Xp = torch.as_tensor(np.asarray(X_pending, dtype=float), dtype=torch.double)
        with torch.no_grad():
            self.outputs = [_OutputCache(m, Xp) for m in model.models]

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    def marginal(self, X: torch.Tensor, dtype=torch.float32):
        """(mean, std) of every output at the rows of X, each of shape (len(X), n_outputs)."""
        with torch.no_grad():
            mus, sds = [], []
            for out in self.outputs:
                mu, var = out.predict(X, dtype=dtype)
                mus.append(mu)
                sds.append(var.sqrt())
            return torch.stack(mus, -1), torch.stack(sds, -1)

    def joint_samples(self, X: torch.Tensor, n_samples: int, generator: torch.Generator):
        """Joint samples, shape (n_samples, len(X), n_outputs); outputs sampled independently."""
        with torch.no_grad():
            return torch.stack(
                [o.joint_samples(X, n_samples, generator) for o in self.outputs], -1
            )

    def lengthscales(self) -> np.ndarray | None:
        """Mean ARD lengthscale over the outputs (None when a kernel has none)."""
        ls = [o.lengthscale for o in self.outputs if o.lengthscale is not None]
        if not ls:
            return None
        return torch.stack(ls).mean(0).numpy()
