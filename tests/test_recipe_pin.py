"""The paper's recipe (SGD momentum 0.9, staircase decay) pinned bit for bit on CPU.

The values were recorded on main at de1ac70, before the recipe became configurable (issue
#21): a change of the default update, schedule or loss that moves any bit fails here.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rethink_checks.data import load_digits
from rethink_checks.training import fit

PINNED = {
    "paper": (dict(max_epochs=4, eval_every=1, lr_decay_steps=5, batch_size=32),
              ["0x1.28f9adb6db6dbp+1", "0x1.1379000000000p+1", "0x1.f820f00000000p+0",
               "0x1.ba31349249249p+0"], [0.215, 0.54, 0.635, 0.68], "-0x1.6793e48170000p+2"),
    "weight_decay": (dict(max_epochs=3, eval_every=1, weight_decay=5e-3, lr=0.05, batch_size=48),
                     ["0x1.246dc1999999ap+1", "0x1.dc0accccccccdp+0", "0x1.5ad9c80000000p+0"],
                     [0.515, 0.63, 0.775], "-0x1.4d9892a2c8000p+2"),
}


def _model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.mark.parametrize("case", sorted(PINNED))
def test_paper_recipe_is_bit_identical_to_the_hand_written_update(case):
    settings, losses, accuracies, weights = PINNED[case]
    data = load_digits(whiten=True).subset(200, seed=0, n_test=50)
    run = fit(_model, data, device="cpu", **settings)
    assert [x.hex() for x in run.curves["train_loss"]] == losses
    assert run.curves["train_accuracy"] == accuracies
    with torch.no_grad():
        total = float(sum(p.double().sum() for p in run.model.parameters()))
    assert total.hex() == weights
