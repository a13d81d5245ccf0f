"""The paper's published numbers (Zhang et al., ICLR 2017): Table 1 and Figure 1a, from PAPER.md.

Pure data: the reproduction (:mod:`rethink_checks.reproduce`) plans its runs from these and
prints them beside ours.
"""
from __future__ import annotations

MODEL_NAMES = ("inception", "inception_nobn", "alexnet", "mlp3x512", "mlp1x512")
MODEL_LABELS = {"inception": "Inception", "inception_nobn": "Inception w/o BN",
                "alexnet": "AlexNet", "mlp3x512": "MLP 3x512", "mlp1x512": "MLP 1x512"}
#: Table 1 variants: name -> (random crop, weight decay, random labels).
#: Default training order: the rows the Figure 1 runs share first, then the regularized ones.
VARIANTS = {"plain": (False, False, False), "random_labels": (False, False, True),
            "wd": (False, True, False), "crop": (True, False, False),
            "crop_wd": (True, True, False)}
#: (model, variant) -> (train %, test %) as printed in the paper's Table 1, in its order.
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("inception", "crop_wd"): (100.0, 89.05), ("inception", "crop"): (100.0, 89.31),
    ("inception", "wd"): (100.0, 86.03), ("inception", "plain"): (100.0, 85.75),
    ("inception", "random_labels"): (100.0, 9.78),
    ("inception_nobn", "wd"): (100.0, 83.00), ("inception_nobn", "plain"): (100.0, 82.00),
    ("inception_nobn", "random_labels"): (100.0, 10.12),
    ("alexnet", "crop_wd"): (99.90, 81.22), ("alexnet", "crop"): (99.82, 79.66),
    ("alexnet", "wd"): (100.0, 77.36), ("alexnet", "plain"): (100.0, 76.07),
    ("alexnet", "random_labels"): (99.82, 9.86),
    ("mlp3x512", "wd"): (100.0, 53.35), ("mlp3x512", "plain"): (100.0, 52.39),
    ("mlp3x512", "random_labels"): (100.0, 10.48),
    ("mlp1x512", "wd"): (99.80, 50.39), ("mlp1x512", "plain"): (100.0, 50.51),
    ("mlp1x512", "random_labels"): (99.34, 10.61),
}
#: Figure 1a's randomizations, in the order the reproduction trains and reports them.
FIGURE1A = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
#: Steps to reach training loss <= 0.01 in the public re-run quoted in PAPER.md (batch 128).
PUBLIC_RERUN_STEPS = {"true_labels": 5700, "shuffled_pixels": 6700, "gaussian": 9900,
                      "random_pixels": 13000, "random_labels": 17700}
