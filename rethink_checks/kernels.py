"""Section 5 of the paper: minimum-norm kernel interpolation of the training labels.

Kept apart from Theorem 1's construction (:mod:`rethink_checks.theory`, which re-exports the
public names here): both answer "can a simple model fit any labels", but share no code.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .errors import DataError, DeviceError, InputTypeError, SettingsError

__all__ = ["KernelResult", "KernelInterpolant", "kernel_interpolate", "median_bandwidth"]


# --------------------------------------------------------------------------- kernels


@dataclass
class KernelResult:
    """Minimum-norm kernel interpolation (paper section 5): errors, RKHS norm and cost."""

    train_error: float
    test_error: float | None
    rkhs_norm: float
    n_train: int
    n_test: int
    num_classes: int
    kernel: str
    bandwidth: float | None
    jitter: float
    solver: str  # "cholesky"; "eigh" or "svd" (linear kernel, n > d): pseudo-inverse when K + jitter*I is singular
    seconds: float  # wall clock of the whole call, Gram matrix and factorization included
    gram_seconds: float  # building the training Gram matrix
    solve_seconds: float  # factorizing it (shared by every labelling solved against it)
    device: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(f"device: {device!r} is not a device name (use auto, cpu, cuda, cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device: {device!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return dev


def _as_features(x: Any, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 0 or len(t) == 0:
        raise DataError(f"{name}: need at least one example, got shape {tuple(t.shape)}")
    t = t.reshape(len(t), -1).to(device=device, dtype=dtype)
    if not torch.isfinite(t).all():
        raise DataError(f"{name}: contains non-finite values (NaN/inf); kernel interpolation needs finite inputs")
    return t


def _as_labels(y: Any, n: int, name: str, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(y)
    if t.ndim != 1 or len(t) != n:
        raise DataError(f"{name}: need one integer label per example ({n}), got shape {tuple(t.shape)}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or (n and int(t.min()) < 0):
        raise DataError(f"{name}: need non-negative integer class labels, got dtype {t.dtype}")
    return t.to(device=device, dtype=torch.int64)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances, built in place: one len(a) x len(b) buffer at peak."""
    out = a @ b.T
    out.mul_(-2).add_((a * a).sum(1)[:, None]).add_((b * b).sum(1)[None, :])
    return out.clamp_min_(0)


def median_bandwidth(x: torch.Tensor, max_points: int = 2000, seed: int = 0) -> float:
    """Median heuristic: the median pairwise Euclidean distance among up to ``max_points`` (seeded) points."""
    if len(x) > max_points:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_points]
        x = x[idx.to(x.device)]
    d = _sq_dists(x, x)
    off = d[~torch.eye(len(x), dtype=torch.bool, device=x.device)]
    return float(off.sqrt().median()) if off.numel() else 1.0


def _kernel(a: torch.Tensor, b: torch.Tensor, kernel: str, bandwidth: float | None) -> torch.Tensor:
    if kernel == "linear":
        return a @ b.T
    return _sq_dists(a, b).mul_(-0.5 / bandwidth ** 2).exp_()


def _check_options(kernel: str, bandwidth: float | None, jitter: float, solver: str) -> None:
    """SettingsError (or InputTypeError for a non-number) naming the option, its value and what is allowed."""
    if kernel not in ("rbf", "linear"):
        raise SettingsError(f"kernel: {kernel!r} is not supported; allowed: 'rbf', 'linear'")
    if solver not in ("auto", "cholesky"):
        raise SettingsError(f"solver: {solver!r} is not supported; allowed: 'auto', 'cholesky'")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)):
        raise InputTypeError(f"jitter: need a finite number >= 0, got {type(jitter).__name__} {jitter!r}")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise SettingsError(f"jitter: need a finite number >= 0, got {jitter!r}")
    if bandwidth is None:
        return
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)):
        raise InputTypeError(f"bandwidth: need a finite number > 0 (or None for the median heuristic), "
                             f"got {type(bandwidth).__name__} {bandwidth!r}")
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise SettingsError(f"bandwidth: need a finite number > 0 (or None for the median heuristic), "
                            f"got {bandwidth!r}")


def _oom(n: int, dev: torch.device, dtype: torch.dtype) -> DeviceError:
    size = n * n * torch.finfo(dtype).bits / 8 / 2**30
    return DeviceError(f"train_x: {n} points need a {n}x{n} kernel matrix ({size:.1f} GiB, twice that to "
                       f"factor) which does not fit on {dev}; use fewer points")


class KernelInterpolant:
    """The Gram matrix of ``train_x`` built and factored once; any labelling is then one solve.

    ``kernel``: "rbf" (k = exp(-||x - x'||^2 / (2 bandwidth^2)); bandwidth defaults to the median
    pairwise distance of up to 2,000 training points, seeded) or "linear" (k = <x, x'>).
    Inputs are flattened. ``jitter`` adds jitter * I to K before factoring. ``solver``:
    "auto" (Cholesky; when K + jitter I is not positive definite, the pseudo-inverse from an
    eigendecomposition, i.e. the minimum-norm least-squares solution; for a linear kernel on
    more points than dimensions, directly from the SVD of the data) or "cholesky" (raise).
    float32 is accepted on CUDA only, where it halves memory.
    """

    def __init__(self, train_x: Any, *, kernel: str = "rbf", bandwidth: float | None = None,
                 jitter: float = 0.0, device: str = "auto", dtype: torch.dtype = torch.float64,
                 solver: str = "auto") -> None:
        started = time.perf_counter()
        _check_options(kernel, bandwidth, jitter, solver)
        self.device = _resolve_device(device)
        if dtype not in (torch.float64, torch.float32) or (dtype == torch.float32 and self.device.type != "cuda"):
            raise SettingsError(f"dtype: got {dtype} on {self.device}; allowed: torch.float64, or torch.float32 "
                                "on CUDA only")
        self.x = _as_features(train_x, "train_x", dtype, self.device)
        self.kernel, self.jitter, self.dtype = kernel, float(jitter), dtype
        if kernel == "rbf" and bandwidth is None:
            bandwidth = median_bandwidth(self.x)
            if bandwidth <= 0:
                raise DataError("train_x: all points coincide, so the median-heuristic bandwidth is 0; pass bandwidth")
        self.bandwidth = float(bandwidth) if kernel == "rbf" else None
        try:
            self.gram = _kernel(self.x, self.x, kernel, self.bandwidth)
            self._sync()
            self.gram_seconds = time.perf_counter() - started
            factor_start = time.perf_counter()
            self.solver = self._factor(solver)
            self._sync()
        except torch.OutOfMemoryError as exc:
            raise _oom(len(self.x), self.device, dtype) from exc
        self.solve_seconds = time.perf_counter() - factor_start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _factor(self, solver: str) -> str:
        """Cholesky of K + jitter I, else (solver='auto') its eigendecomposition for the pseudo-inverse."""
        k = self.gram
        if self.kernel == "linear" and self.jitter == 0 and len(self.x) > self.x.shape[1]:
            return self._factor_low_rank(solver)
        k.diagonal().add_(self.jitter)
        try:
            chol, info = torch.linalg.cholesky_ex(k)
            if int(info) == 0:
                self._chol = chol
                return "cholesky"
            del chol
            if solver == "cholesky":
                raise DataError(f"kernel matrix (+ jitter={self.jitter:g}) is not positive definite (Cholesky "
                                f"failed at column {int(info)}); raise jitter or use solver='auto' for the pseudo-inverse")
            evals, self._evecs = torch.linalg.eigh(k)
            cutoff = evals.abs().max() * len(k) * torch.finfo(k.dtype).eps
            self._inv_evals = torch.where(evals > cutoff, 1.0 / evals, torch.zeros_like(evals))
            return "eigh"
        finally:
            k.diagonal().sub_(self.jitter)

    def _factor_low_rank(self, solver: str) -> str:
        """Linear kernel with n > d: K = X X^T has rank <= d, so take K^+ = U S^-2 U^T from the SVD of X."""
        if solver == "cholesky":
            raise DataError(f"kernel matrix is not positive definite: a linear kernel on {len(self.x)} points "
                            f"in {self.x.shape[1]} dimensions has rank <= {self.x.shape[1]}; add jitter or use "
                            "solver='auto' for the pseudo-inverse")
        u, sv, _ = torch.linalg.svd(self.x, full_matrices=False)
        evals = sv * sv
        cutoff = evals.max() * len(self.x) * torch.finfo(self.x.dtype).eps
        self._evecs = u
        self._inv_evals = torch.where(evals > cutoff, 1.0 / evals, torch.zeros_like(evals))
        return "svd"

    def alpha(self, targets: torch.Tensor) -> torch.Tensor:
        """Coefficients with (K + jitter I) alpha = targets (minimum-norm least squares if singular)."""
        targets = targets.to(device=self.device, dtype=self.dtype)
        if self.solver == "cholesky":
            return torch.cholesky_solve(targets, self._chol)
        return self._evecs @ (self._inv_evals[:, None] * (self._evecs.T @ targets))

    def scores(self, x: torch.Tensor, alpha: torch.Tensor, rows: int = 4096) -> torch.Tensor:
        """k(x, train_x) alpha for new inputs, in row chunks (never the whole test Gram matrix)."""
        return torch.cat([_kernel(x[s:s + rows], self.x, self.kernel, self.bandwidth) @ alpha
                          for s in range(0, len(x), rows)])

    def interpolate_many(self, label_sets: dict[str, Any], test_x: Any = None, test_y: Any = None,
                         num_classes: int | None = None) -> dict[str, KernelResult]:
        """Fit several labellings of the same points (e.g. true and random) in one multi-column solve."""
        started = time.perf_counter()
        if (test_x is None) != (test_y is None):
            raise DataError("test_x, test_y: give both or neither (got only one of them)")
        n = len(self.x)
        labels = {name: _as_labels(y, n, f"train_y[{name!r}]" if len(label_sets) > 1 else "train_y", self.device)
                  for name, y in label_sets.items()}
        xte = yte = None
        if test_x is not None:
            xte = _as_features(test_x, "test_x", self.dtype, self.device)
            yte = _as_labels(test_y, len(xte), "test_y", self.device)
            if xte.shape[1] != self.x.shape[1]:
                raise DataError(f"test_x: {xte.shape[1]} features per example, train_x has {self.x.shape[1]}")
        seen = max([int(y.max()) for y in labels.values()] + ([int(yte.max())] if yte is not None else [])) + 1
        k = seen if num_classes is None else num_classes
        if k < seen:
            raise DataError(f"num_classes: {num_classes} but labels go up to {seen - 1}")
        targets = torch.cat([torch.nn.functional.one_hot(y, k) for y in labels.values()], 1).to(self.dtype)
        try:
            alpha = self.alpha(targets)
            fitted = self.gram @ alpha
            test_scores = self.scores(xte, alpha) if xte is not None else None
            self._sync()
        except torch.OutOfMemoryError as exc:
            raise _oom(n, self.device, self.dtype) from exc
        results = {}
        for i, (name, y) in enumerate(labels.items()):
            cols = slice(i * k, (i + 1) * k)
            results[name] = KernelResult(
                train_error=float((fitted[:, cols].argmax(1) != y).double().mean()),
                test_error=None if xte is None else float((test_scores[:, cols].argmax(1) != yte).double().mean()),
                rkhs_norm=math.sqrt(max(float((alpha[:, cols] * fitted[:, cols]).sum()), 0.0)),
                n_train=n, n_test=0 if xte is None else len(xte), num_classes=k, kernel=self.kernel,
                bandwidth=self.bandwidth, jitter=self.jitter, solver=self.solver,
                seconds=self.gram_seconds + self.solve_seconds + time.perf_counter() - started,
                gram_seconds=self.gram_seconds, solve_seconds=self.solve_seconds, device=str(self.device),
                dtype=str(self.dtype).replace("torch.", ""))
        return results


def kernel_interpolate(train_x: Any, train_y: Any, test_x: Any = None, test_y: Any = None, *,
                       kernel: str = "rbf", bandwidth: float | None = None, jitter: float = 0.0,
                       num_classes: int | None = None, device: str = "auto",
                       dtype: torch.dtype = torch.float64, solver: str = "auto") -> KernelResult:
    """Fit one-hot labels with the minimum-norm kernel interpolant (solve K alpha = Y) and score it.

    Options as in :class:`KernelInterpolant`; the training error is 0 whenever K (+ jitter I)
    is nonsingular, the RKHS norm is sqrt(trace(alpha^T K alpha)).
    """
    if (test_x is None) != (test_y is None):
        raise DataError("test_x, test_y: give both or neither (got only one of them)")
    _check_options(kernel, bandwidth, jitter, solver)
    n = len(_as_features(train_x, "train_x", torch.float64, torch.device("cpu")))
    _as_labels(train_y, n, "train_y", torch.device("cpu"))  # fail before the O(n^2) work
    model = KernelInterpolant(train_x, kernel=kernel, bandwidth=bandwidth, jitter=jitter, device=device,
                              dtype=dtype, solver=solver)
    return model.interpolate_many({"labels": train_y}, test_x, test_y, num_classes)["labels"]


# --------------------------------------------------------------------------- check
