"""Theorem 1 (finite-sample expressivity) built constructively, and section 5's min-norm kernel interpolant."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .errors import DataError
from .kernels import KernelInterpolant, KernelResult, kernel_interpolate, median_bandwidth
from .results import CheckResult, key_metric, table_summary
from .dataset import require_training_examples

__all__ = ["Theorem1Info", "TwoLayerReLU", "Theorem1Classifier", "theorem1_network", "theorem1_classifier",
           "check_expressivity",
           # section 5's kernel interpolation lives in rethink_checks.kernels
           "KernelResult", "KernelInterpolant", "kernel_interpolate", "median_bandwidth"]

# Rows of the (never materialized) n x n triangular matrix handled at once: bounds memory to
# _BLOCK * n float64 values, so n = 50,000 needs about 400 MB rather than 20 GB.
_BLOCK = 1024
_MAX_PROJECTION_ATTEMPTS = 8
# Sorted projections closer than this (relative to their spread) count as colliding.
_COLLISION_RTOL = 1e-11


# --------------------------------------------------------------------------- Theorem 1


@dataclass
class Theorem1Info:
    """How the Theorem 1 network was built and how well it reproduces its targets.

    ``residual`` is max |c(z_i) - y_i| evaluated through the module's own forward pass
    (float64); ``relative_residual`` divides it by max(1, max |y|). ``condition_estimate``
    is a cheap lower bound on the infinity-norm condition number of the triangular system
    (||A||_inf * max(||w||_inf / ||y||_inf, ||A^-1 s||_inf) for an alternating-sign s);
    ``diagonal_ratio`` is max A_ii / min A_ii (also a lower bound).
    """

    n: int
    d: int
    outputs: int
    num_weights: int  # per network: 2n + d
    total_weights: int  # outputs * (2n + d)
    residual: float
    relative_residual: float
    condition_estimate: float
    diagonal_ratio: float
    min_gap: float  # smallest distance between consecutive sorted projections
    attempts: int  # projections tried before one separated the points
    seconds: float
    train_accuracy: float | None = None  # classifier only: argmax agreement with the labels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TwoLayerReLU(nn.Module):
    """c(x) = sum_j w_j relu(<a, x> - b_j): exactly 2n + d parameters (a: d, b: n, w: n)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.detach().clone().to(torch.float64))
        self.b = nn.Parameter(b.detach().clone().to(torch.float64))
        self.w = nn.Parameter(w.detach().clone().to(torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of shape (batch,), in float64, for inputs flattened to (batch, d)."""
        proj = x.reshape(len(x), -1).to(self.a) @ self.a
        return _sum_relu(proj, self.b, self.w.unsqueeze(1)).squeeze(1)


class Theorem1Classifier(nn.Module):
    """One Theorem 1 network per class, each regressing that class's one-hot target; argmax classifies."""

    def __init__(self, networks: list[TwoLayerReLU]) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)

    @property
    def num_weights_per_network(self) -> int:
        return sum(p.numel() for p in self.networks[0].parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape (batch, num_classes); one hidden layer pass when the networks share a and b."""
        first = self.networks[0]
        if all(torch.equal(net.a, first.a) and torch.equal(net.b, first.b) for net in self.networks[1:]):
            proj = x.reshape(len(x), -1).to(first.a) @ first.a
            return _sum_relu(proj, first.b, torch.stack([net.w for net in self.networks], dim=1))
        return torch.stack([net(x) for net in self.networks], dim=1)


def _sum_relu(proj: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_j relu(proj_i - b_j) * w_jk, chunked over i so memory stays O(_BLOCK * n)."""
    out = []
    for start in range(0, len(proj), _BLOCK):
        hidden = torch.relu(proj[start:start + _BLOCK, None] - b[None, :])
        out.append(hidden @ w)
    if not out:
        return proj.new_zeros((0, w.shape[1]))
    return torch.cat(out)


def _as_points(points: Any) -> torch.Tensor:
    """Validate and flatten ``points`` to a finite float64 (n, d) tensor."""
    z = torch.as_tensor(points).detach().cpu()
    if z.ndim == 0 or len(z) == 0:
        raise DataError(f"points: need at least one point, got shape {tuple(z.shape)}")
    z = z.reshape(len(z), -1).to(torch.float64)
    if z.shape[1] == 0:
        raise DataError(f"points: each point needs at least one coordinate, got shape {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        bad = torch.nonzero(~torch.isfinite(z).all(1)).flatten()[:10].tolist()
        raise DataError(f"points: non-finite values (NaN/inf) in rows {bad}; all coordinates must be finite")
    return z


def _as_targets(targets: Any, n: int) -> torch.Tensor:
    """Validate ``targets`` as a finite float64 (n, k) tensor."""
    y = torch.as_tensor(targets).detach().cpu().to(torch.float64)
    if y.ndim == 0 or len(y) != n or y.ndim > 2:
        raise DataError(f"targets: need shape ({n},) or ({n}, k) to match {n} points, got {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise DataError("targets: non-finite values (NaN/inf); Theorem 1 fits finite real targets only")
    return y.reshape(n, -1)


def _check_distinct(z: torch.Tensor) -> None:
    """Raise DataError naming duplicate rows: the theorem needs n distinct points."""
    _, inverse, counts = torch.unique(z, dim=0, return_inverse=True, return_counts=True)
    if len(counts) == len(z):
        return
    groups = []
    for group in torch.nonzero(counts > 1).flatten()[:5].tolist():
        groups.append(torch.nonzero(inverse == group).flatten().tolist()[:6])
    raise DataError(f"points: {len(z) - len(counts)} duplicate point(s), e.g. indices {groups} are "
                    "identical; Theorem 1 needs n distinct points (drop duplicates first)")


def _random_projection(d: int, seed: int, attempt: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + attempt)
    return torch.randn(d, generator=gen, dtype=torch.float64)


def _separating_projection(z: torch.Tensor, projection: Any, seed: int) -> tuple[torch.Tensor, int]:
    """A vector a whose projections <a, z_i> are pairwise distinct (retrying random ones).

    a is rescaled so the projections span 1 (a lone point: |<a, z>| <= 1), which keeps the
    biases and output weights in float64 range whatever the scale of the points.
    """
    attempts = 1 if projection is not None else _MAX_PROJECTION_ATTEMPTS
    zmax = float(z.abs().max()) or 1.0
    unit = z / zmax  # project scaled points: no overflow for huge coordinates
    for attempt in range(attempts):
        if projection is not None:
            a = torch.as_tensor(projection, dtype=torch.float64).flatten()
            if a.numel() != z.shape[1] or not torch.isfinite(a).all() or not a.abs().max() > 0:
                raise DataError(f"projection: need {z.shape[1]} finite values, not all zero, got "
                                f"{torch.as_tensor(projection).tolist()}")
            a = a / a.abs().max()
        else:
            a = _random_projection(z.shape[1], seed, attempt)
        p = (unit @ a).sort().values
        spread = float(p[-1] - p[0]) if len(p) > 1 else max(1.0, abs(float(p[0])))
        if len(p) == 1 or float((p[1:] - p[:-1]).min()) > _COLLISION_RTOL * max(spread, p.abs().max().item()):
            scaled = a / (zmax * spread)
            if not torch.isfinite(scaled).all():
                raise DataError(f"points: coordinates of size {zmax:.3g} lie too close together to separate "
                                "in float64 (the projection would overflow); rescale the points")
            return scaled, attempt + 1
    what = "the given projection" if projection is not None else f"{attempts} random projections"
    raise DataError(f"points: projections onto {what} collide (two points map to the same value within "
                    f"relative {_COLLISION_RTOL:g}); the points are too close to separate in float64")


def _biases(x: torch.Tensor) -> torch.Tensor:
    """Interleaved biases b_1 < x_1 < b_2 < ... < b_n < x_n: midpoints, b_1 half a median gap below x_1."""
    if len(x) == 1:
        return x - 1.0
    gaps = x[1:] - x[:-1]
    first = x[:1] - gaps.median() / 2
    return torch.cat([first, (x[1:] + x[:-1]) / 2])


def _forward_substitution(x: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Solve A w = y for A_ij = relu(x_i - b_j) (lower triangular) block by block, never forming A."""
    n = len(x)
    w = torch.empty_like(y)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rhs = y[start:stop]
        if start:
            rhs = rhs - torch.relu(x[start:stop, None] - b[None, :start]) @ w[:start]
        diag_block = torch.relu(x[start:stop, None] - b[None, start:stop])
        w[start:stop] = torch.linalg.solve_triangular(diag_block, rhs, upper=False)
    return w


def _condition_estimate(x: torch.Tensor, b: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    """Lower bound on cond_inf(A): ||A||_inf times the largest observed ||A^-1 v|| / ||v||."""
    # Row i of A sums to i * x_i - sum_{j<=i} b_j (all terms are positive).
    idx = torch.arange(1, len(x) + 1, dtype=torch.float64)
    norm_a = float((idx * x - torch.cumsum(b, 0)).max())
    signs = torch.ones(len(x), 1, dtype=torch.float64)
    signs[1::2] = -1.0
    inv_alt = float(_forward_substitution(x, b, signs).abs().max())
    y_norm = float(y.abs().max())
    inv_y = float(w.abs().max()) / y_norm if y_norm > 0 else 0.0
    return norm_a * max(inv_alt, inv_y)


def _solve_theorem1(points: Any, targets: Any, projection: Any, seed: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Theorem1Info]:
    """Shared construction: returns a, b, W (n, k), the points z, targets Y (n, k) and the info."""
    z = _as_points(points)
    y = _as_targets(targets, len(z))
    _check_distinct(z)
    a, attempts = _separating_projection(z, projection, seed)
    x, order = (z @ a).sort()
    b = _biases(x)
    y_sorted = y[order]
    w = _forward_substitution(x, b, y_sorted)
    if not torch.isfinite(w).all():
        raise DataError("targets: the output weights overflow float64 (targets too large for the gaps "
                        "between projected points); rescale the targets or the points")
    diag = x - b
    info = Theorem1Info(
        n=len(z), d=z.shape[1], outputs=y.shape[1], num_weights=2 * len(z) + z.shape[1],
        total_weights=y.shape[1] * (2 * len(z) + z.shape[1]), residual=float("nan"),
        relative_residual=float("nan"), condition_estimate=_condition_estimate(x, b, y_sorted, w),
        diagonal_ratio=float(diag.max() / diag.min()),
        min_gap=float((x[1:] - x[:-1]).min()) if len(x) > 1 else float("inf"),
        attempts=attempts, seconds=0.0)
    return a, b, w, z, y, info


def _finish(info: Theorem1Info, predicted: torch.Tensor, y: torch.Tensor, started: float) -> Theorem1Info:
    residual = float((predicted.reshape(y.shape) - y).abs().max())
    info.residual = residual
    info.relative_residual = residual / max(1.0, float(y.abs().max()))
    info.seconds = time.perf_counter() - started
    return info


def theorem1_network(points: Any, targets: Any, *, projection: Any = None, seed: int = 0
                     ) -> tuple[TwoLayerReLU, Theorem1Info]:
    """The two-layer ReLU network of Theorem 1 reproducing real ``targets`` (n,) on ``n`` distinct points.

    Inputs of any shape are flattened to (n, d). ``projection`` fixes the direction of a (else a
    seeded Gaussian vector, redrawn up to 8 times if projections collide); a is scaled so the
    projections span 1. The triangular system is solved
    in float64 by blocked forward substitution. Returns the module and a :class:`Theorem1Info`.
    """
    started = time.perf_counter()
    y_in = torch.as_tensor(targets)
    if y_in.ndim != 1:
        raise DataError(f"targets: theorem1_network takes one real target per point (shape (n,)), got "
                        f"{tuple(y_in.shape)}; use theorem1_classifier for class labels")
    a, b, w, z, y, info = _solve_theorem1(points, targets, projection, seed)
    net = TwoLayerReLU(a, b, w[:, 0])
    with torch.no_grad():
        return net, _finish(info, net(z), y, started)


def theorem1_classifier(points: Any, labels: Any, num_classes: int | None = None, *,
                        projection: Any = None, seed: int = 0) -> tuple[Theorem1Classifier, Theorem1Info]:
    """One Theorem 1 network per class regressing one-hot targets: argmax reproduces ``labels`` exactly.

    ``info.num_weights`` is the per-network figure 2n + d; ``info.total_weights`` multiplies
    it by ``num_classes``. The networks share the projection and biases (one solve, k right-hand sides).
    """
    started = time.perf_counter()
    lab = torch.as_tensor(labels).detach().cpu()
    if lab.ndim != 1 or lab.dtype.is_floating_point or lab.dtype == torch.bool:
        raise DataError(f"labels: need a 1-D integer tensor, got dtype {lab.dtype} shape {tuple(lab.shape)}")
    k = int(lab.max()) + 1 if num_classes is None and len(lab) else num_classes
    if k is None or k < 1 or (len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= k)):
        raise DataError(f"labels: values must lie in [0, num_classes={k}), got range "
                        f"[{int(lab.min()) if len(lab) else '-'}, {int(lab.max()) if len(lab) else '-'}]")
    one_hot = torch.nn.functional.one_hot(lab.long(), k).to(torch.float64)
    a, b, w, z, y, info = _solve_theorem1(points, one_hot, projection, seed)
    model = Theorem1Classifier([TwoLayerReLU(a, b, w[:, c]) for c in range(k)])
    with torch.no_grad():
        scores = model(z)
    info.train_accuracy = float((scores.argmax(1) == lab).double().mean())
    return model, _finish(info, scores, y, started)


def _distinct_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Indices of the first occurrence of each distinct row, and how many duplicates were dropped."""
    _, inverse = torch.unique(x, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(x), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(x)), reduce="amin")
    keep = first.sort().values
    return keep, len(x) - len(keep)


def check_expressivity(model_factory: Any, data: Any, settings: Any, cache: Any = None) -> CheckResult:
    """Build Theorem 1's network on the check's training data with random labels; compare sizes.

    Passes when the construction reproduces every random label (train accuracy 1.0).
    Duplicate training points (which no function can label two ways) are dropped and counted.
    """
    from .corruptions import CorruptionSpec
    from .models import count_parameters

    started = time.perf_counter()
    seed = int(getattr(settings, "seed", 0))
    train_size = getattr(settings, "train_size", None)
    total = require_training_examples(data)
    if train_size is not None and train_size < total:
        data = data.subset(train_size, seed=seed)
    noisy = CorruptionSpec(name="random_labels", seed=seed, mode=getattr(settings, "label_mode", "paper")).apply(data)
    z = noisy.train_x.reshape(len(noisy.train_x), -1).detach().cpu().to(torch.float64)
    keep, dropped = _distinct_rows(z)
    z, labels = z[keep], noisy.train_y.detach().cpu()[keep]
    _, info = theorem1_classifier(z, labels, noisy.num_classes, seed=seed)
    accuracy = info.train_accuracy
    user_params = count_parameters(model_factory())
    metrics = {
        "fitted": accuracy == 1.0, "train_accuracy": accuracy, "n": info.n, "d": info.d,
        "num_classes": info.outputs, "duplicates_dropped": dropped,
        "theorem1_weights": info.num_weights, "theorem1_weights_total": info.total_weights,
        "residual": info.residual, "relative_residual": info.relative_residual,
        "condition_estimate": info.condition_estimate, "num_parameters": user_params,
        "params_ratio": user_params / info.num_weights,
        "params_ratio_total": user_params / info.total_weights,
        "construction_seconds": info.seconds,
    }
    passed = accuracy == 1.0
    message = (f"Theorem 1 network ({info.num_weights} weights per class, {info.outputs} classes) "
               f"{'fits' if passed else 'does NOT fit'} {info.n} random labels (accuracy {accuracy:.4f}, "
               f"residual {info.residual:.2e}); the model has {user_params} parameters = "
               f"{user_params / info.num_weights:.1f}x the 2n + d = {info.num_weights} of one network")
    return CheckResult(check="expressivity", passed=passed,
                       criterion="Theorem 1 construction reproduces random labels exactly (accuracy 1.0)",
                       message=message, metrics=metrics, seconds=time.perf_counter() - started,
                       summary=table_summary(train=accuracy,
                                             key=[key_metric("residual", info.residual, "{:.1e}")]))
