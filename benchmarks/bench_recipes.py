"""Epochs to fit random labels under the paper's recipe and under AdamW, side by side (issue #21).

Two models people build now, each checked with ``true_labels`` and ``random_labels`` under
two recipes in one run (interleaved per model, so both see the same machine load):

* ``bert``: transformers' ``BertForSequenceClassification`` from a ``BertConfig`` (2 layers,
  hidden 64, 2 heads, no dropout), wrapped to return logits, on a seeded token corpus (600
  documents of 32 ids, 3 classes, each class drawing half its ids from its own 50);
* ``vit``: timm's ``vit_tiny_patch16_224`` built with ``patch_size=4, img_size=32`` and
  ``pretrained=False``, on 256 real CIFAR-10 images (``folder:`` spec of the shared JPEGs,
  whitened) and 1,000 test images.

Recipes: ``paper`` (the defaults: SGD momentum 0.9, lr 0.01, x0.95 per 391 steps) and
``adamw`` (``optimizer=adamw``, lr 1e-3, ``schedule=cosine``, ``warmup=0.05``), the settings
the command line's ``--rethink-optimizer=adamw --rethink-schedule=cosine --rethink-warmup=0.05``
give. Every fit gets the data's own defaults (user data: batch <= 1/8 of the rows, >= 4,000
steps) unless ``--max-epochs`` caps them; the paper's recipe may fail: that is the finding.

Usage: python benchmarks/bench_recipes.py [--models bert,vit] [--device cpu] [--max-epochs N]
           [--threads 1] [--quick] [--out PATH]
``--quick``: 150 documents, a 2-block ViT on 64 images, at most 40 epochs (a smoke test).
Prints a table and writes JSON (default benchmarks/results/recipes.json; quick: recipes_quick.json).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from _common import RESULTS, hardware, write_json

from rethink_checks.checks import CheckSettings, RunCache, run_check
from rethink_checks.data import from_tensors, load

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "adamw": {"optimizer": "adamw", "schedule": "cosine", "warmup": 0.05},
}
CHECKS = ("true_labels", "random_labels")


class BertLogits(nn.Module):
    """BertForSequenceClassification (from a config, no download) returning its logits."""

    def __init__(self, vocab_size: int, num_classes: int):
        super().__init__()
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=256, max_position_embeddings=64,
                            num_labels=num_classes, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
        self.bert = BertForSequenceClassification(config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids).logits


def token_corpus(n: int, length: int = 32, seed: int = 0):
    """``n`` training and n/4 test documents of ``length`` ids, 3 classes, vocabulary 1,000."""
    g = torch.Generator().manual_seed(seed)
    total = n + n // 4
    y = torch.randint(0, 3, (total,), generator=g)
    own = torch.randint(0, 50, (total, length), generator=g) + 50 * y[:, None]
    shared = torch.randint(150, 1000, (total, length), generator=g)
    x = torch.where(torch.rand(total, length, generator=g) < 0.5, own, shared)
    return from_tensors(x[:n], y[:n], x[n:], y[n:], num_classes=3, name=f"tokens[{n}]", vocab_size=1000)


def bert(quick: bool) -> tuple[Any, Callable[[], nn.Module]]:
    data = token_corpus(150 if quick else 600)
    return data, lambda: BertLogits(data.vocab_size, data.num_classes)


def vit(quick: bool) -> tuple[Any, Callable[[], nn.Module]]:
    import timm

    if not SHARED_CIFAR.is_file():
        raise SystemExit(f"vit needs the CIFAR-10 JPEGs at {SHARED_CIFAR}")
    data = load(f"folder:{SHARED_CIFAR}").subset(64 if quick else 256, seed=0, n_test=250 if quick else 1000)
    data = data.replace(fit_defaults=None)  # the 256 images as a user's data: its step budget
    extra = {"depth": 2} if quick else {}
    return data, lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False, patch_size=4,
                                           img_size=32, num_classes=data.num_classes, **extra)


MODELS = {"bert": bert, "vit": vit}


def run(model: str, recipe: str, data: Any, factory: Callable, args: argparse.Namespace) -> list[dict]:
    """Both checks of one model under one recipe (a fresh cache: nothing shared across recipes)."""
    mapping = {**data.defaults, "device": args.device, **RECIPES[recipe]}
    if args.max_epochs:
        mapping["max_epochs"] = min(args.max_epochs, mapping.get("max_epochs", args.max_epochs))
    settings = CheckSettings.from_mapping(mapping)
    cache, rows = RunCache(), []
    for check in CHECKS:
        start = time.perf_counter()
        result = run_check(check, factory, data, settings, cache)
        m = result.metrics
        rows.append({"model": model, "recipe": recipe, "check": check, "passed": result.passed,
                     "epochs_to_fit": m.get("epochs_to_fit"), "epochs": m.get("epochs"),
                     "train_accuracy": m.get("train_accuracy"), "test_accuracy": m.get("test_accuracy"),
                     "batch_size": settings.fit.batch_size, "max_epochs": settings.fit.max_epochs,
                     "seconds": round(time.perf_counter() - start, 1), "recipe_line": m.get("recipe")})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    epochs = r["epochs_to_fit"] if r["epochs_to_fit"] is not None else f"not in {r['epochs']}"
    return (f"{r['model']:5} {r['recipe']:6} {r['check']:14} {'PASS' if r['passed'] else 'FAIL':5} "
            f"epochs {str(epochs):>12}  train {r['train_accuracy']:.3f}  {r['seconds']:7.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,vit")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every fit's epoch budget")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a "
                        "shared machine; tiny models gain nothing from more)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick and args.max_epochs is None:
        args.max_epochs = 40
    rows = []
    for model in args.models.split(","):
        data, factory = MODELS[model](args.quick)
        for recipe in RECIPES:  # both recipes back to back: the same load, the same data
            rows += run(model, recipe, data, factory, args)
    side = [{"model": m, **{f"{rec}_random_labels_epochs": next(
        (r["epochs_to_fit"] if r["passed"] else None) for r in rows
        if r["model"] == m and r["recipe"] == rec and r["check"] == "random_labels") for rec in RECIPES}}
        for m in args.models.split(",")]
    print("\nepochs to fit random labels (None: not within the budget)")
    for s in side:
        print(f"  {s['model']:5} paper {s['paper_random_labels_epochs']!s:>6}   adamw {s['adamw_random_labels_epochs']!s:>6}")
    out = args.out or RESULTS / ("recipes_quick.json" if args.quick else "recipes.json")
    write_json({"benchmark": "bench_recipes", "quick": args.quick, "machine": hardware(args.device),
                "max_epochs_cap": args.max_epochs, "rows": rows, "side_by_side": side}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
