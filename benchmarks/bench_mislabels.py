"""The harness's mislabel finder against cleanlab's documented workflow, in one run.

Usage: python benchmarks/bench_mislabels.py [--datasets digits,cifar10] [--noise 0.05,0.2]
           [--k 100] [--cifar PATH] [--cifar-train 2000] [--epochs 15] [--logreg-iter 100]
           [--mlp-iter 50] [--methods A,B] [--harness-folds 5] [--quick] [--out PATH]
For each dataset and noise level: flip a seeded fraction of the training labels, each to a
different class (``bench_suspects.flip_labels``), then rank the training set four ways, one
after the other in this process (so their seconds share the machine's load):

* ``cleanlab+logreg`` / ``cleanlab+mlp256``: 5-fold out-of-sample probabilities from
  scikit-learn ``LogisticRegression`` / ``MLPClassifier(256)`` on the flattened inputs
  (``cross_val_predict``), ranked by ``cleanlab.rank.get_label_quality_scores``;
* ``cleanlab+model``: the same with the user's model (a small BN CNN), 5 folds trained for
  ``--epochs`` epochs (``mislabels.cross_fit``, no early stop);
  the scikit-learn fits are capped at ``--logreg-iter`` / ``--mlp-iter`` iterations (on 3,072
  CIFAR-10 features an uncapped logistic regression alone took 472 s on the shared 2-core
  machine);
* ``harness``: ``mislabels.find_mislabels`` with the same model, folds and epoch budget (AUM +
  cleanlab quality, stops when its top k is stable).

Scores: precision and recall at k (``--k``, and at k = the number flipped), ROC AUC of the
ranking, seconds. Prints a table and writes JSON (default benchmarks/results/mislabels.json) with
the machine. CIFAR-10: a seeded 2,000-image subset of the shared JPEG archive (skipped with a
note when absent). ``--quick``: digits only, 5% noise, 3 epochs, a subset of 400 (smoke test).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rethink_checks.checks import CheckSettings
from rethink_checks.data import Dataset, load
from rethink_checks.memorization import roc_auc
from rethink_checks.mislabels import cross_fit, find_mislabels, label_quality

from _common import RESULTS, hardware, write_json  # benchmarks/_common.py
from bench_suspects import CIFAR, flip_labels

#: the user's model of the benchmark: a small BN CNN (any image size; global average pooling)
FIT = {"batch_size": 64, "lr": 0.05, "lr_decay": 1.0, "device": "cpu"}


def small_bn_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """conv 16 - BN - ReLU - pool, conv 32 - BN - ReLU - pool, global mean, linear."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))


def scores(suspicion: np.ndarray, flipped: set[int], k: int) -> dict:
    """Precision and recall at k and at k = |flipped|, and the ranking's ROC AUC."""
    order = np.argsort(-suspicion, kind="stable")
    hits_k = len(set(order[:k].tolist()) & flipped)
    m = len(flipped)
    hits_m = len(set(order[:m].tolist()) & flipped)
    positives = [i in flipped for i in range(len(suspicion))]
    return {"k": k, "precision_at_k": hits_k / k, "recall_at_k": hits_k / m,
            "precision_at_flipped": hits_m / m, "auroc": roc_auc(suspicion.tolist(), positives)}


def sklearn_row(name: str, estimator, noisy: Dataset) -> tuple[np.ndarray, float]:
    """cleanlab's documented workflow on a scikit-learn model: 5-fold OOS probabilities, quality."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    start = time.perf_counter()
    x = noisy.train_x.reshape(len(noisy.train_x), -1).numpy()
    y = noisy.train_y.numpy()
    probs = cross_val_predict(estimator, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")
    quality = label_quality(noisy.train_y, torch.as_tensor(probs))
    return -quality.numpy(), time.perf_counter() - start


METHODS = ("cleanlab+logreg", "cleanlab+mlp256", "cleanlab+model", "harness")


def run_case(name: str, data: Dataset, noise: float, k: int, epochs: int, seed: int,
             iters: tuple[int, int], methods: tuple[str, ...] = METHODS,
             harness_folds: int = 5) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    noisy, flipped_list = flip_labels(data, noise, seed)
    flipped = set(flipped_list)
    settings = CheckSettings.from_mapping({**FIT, "seed": seed})
    factory = lambda: small_bn_cnn(data.input_shape, data.num_classes)  # noqa: E731
    rows = []

    def add(method: str, suspicion: np.ndarray, seconds: float, **extra) -> None:
        row = {"dataset": name, "noise": noise, "train_size": len(noisy.train_y),
               "flipped": len(flipped), "method": method, **scores(suspicion, flipped, k),
               "seconds": round(seconds, 1), **extra}
        rows.append(row)
        print(_line(row), flush=True)

    if "cleanlab+logreg" in methods:
        add("cleanlab+logreg", *sklearn_row("logreg", LogisticRegression(max_iter=iters[0]), noisy))
    if "cleanlab+mlp256" in methods:
        add("cleanlab+mlp256", *sklearn_row("mlp", MLPClassifier((256,), max_iter=iters[1],
                                                                 random_state=seed), noisy))
    if "cleanlab+model" in methods:
        start = time.perf_counter()
        rec = cross_fit(factory, noisy, settings, folds=5, max_epochs=epochs)
        quality = label_quality(rec.labels, rec.oos_probs)
        add("cleanlab+model", -quality.numpy(), time.perf_counter() - start, epochs=rec.epochs)
    if "harness" in methods:
        start = time.perf_counter()
        report = find_mislabels(factory, noisy, settings, n=k, folds=harness_folds,
                                max_epochs=epochs)
        add("harness" if harness_folds == 5 else f"harness/{harness_folds}folds",
            np.asarray(report.score), time.perf_counter() - start, epochs=report.epochs,
            stop_reason=report.stop_reason, confidence=report.confidence,
            estimated_issues=report.estimated_issues)
    return rows


HEADER = (f"{'dataset':<9}{'noise':>6}{'flip':>5} {'method':<16}{'P@k':>6}{'R@k':>6}"
          f"{'P@flip':>7}{'AUROC':>7}{'s':>7}{'epochs':>7}")


def _line(row: dict) -> str:
    return (f"{row['dataset']:<9}{row['noise']:>6.2f}{row['flipped']:>5} {row['method']:<16}"
            f"{row['precision_at_k']:>6.3f}{row['recall_at_k']:>6.3f}"
            f"{row['precision_at_flipped']:>7.3f}{row['auroc']:>7.3f}{row['seconds']:>7.1f}"
            f"{row.get('epochs', ''):>7}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,cifar10")
    parser.add_argument("--noise", default="0.05,0.2")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=15, help="epoch budget of the model's fits")
    parser.add_argument("--logreg-iter", type=int, default=100, help="LogisticRegression max_iter")
    parser.add_argument("--mlp-iter", type=int, default=50, help="MLPClassifier max_iter (epochs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cifar", type=Path, default=CIFAR)
    parser.add_argument("--cifar-train", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--methods", default=",".join(METHODS), help="rows to run (comma-separated)")
    parser.add_argument("--harness-folds", type=int, default=5,
                        help="folds of the harness row (the suspects check runs 3)")
    parser.add_argument("--quick", action="store_true", help="digits subset, 5%% noise, 3 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS / "mislabels.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.datasets, args.noise, args.epochs, args.k = "digits", "0.05", 3, 10
        args.logreg_iter, args.mlp_iter = 50, 10
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if not methods or set(methods) - set(METHODS):
        parser.error(f"--methods: {args.methods!r}; allowed: {', '.join(METHODS)}")
    datasets, notes = {}, []
    for name in args.datasets.split(","):
        if name == "digits":
            datasets[name] = load("digits").subset(400, seed=0) if args.quick else load("digits")
        elif name == "cifar10" and not args.cifar.exists():
            notes.append(f"cifar10 skipped: {args.cifar} is absent")
            print(notes[-1])
        elif name == "cifar10":
            datasets[name] = load(f"folder:{args.cifar}").subset(args.cifar_train, seed=0, n_test=500)
        else:
            parser.error(f"--datasets: unknown {name!r}; allowed: digits, cifar10")
    print(HEADER)
    rows: list[dict] = []
    for name, data in datasets.items():
        for noise in (float(p) for p in args.noise.split(",")):
            rows += run_case(name, data, noise, args.k, args.epochs, args.seed,
                             (args.logreg_iter, args.mlp_iter), methods, args.harness_folds)
            write_json({"fit": FIT, "epochs": args.epochs, "k": args.k, "seed": args.seed,
                        "logreg_max_iter": args.logreg_iter, "mlp_max_iter": args.mlp_iter,
                        "model": "small_bn_cnn", "torch": torch.__version__, "notes": notes,
                        "machine": hardware("cpu"), "rows": rows}, args.out, quiet=True)
    print(f"wrote {args.out}")  # after every case, so a stopped run keeps what it measured
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
