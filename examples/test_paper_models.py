"""The paper's models (appendix A of Zhang et al. 2017), built for the data at hand.

``rethink_checks.models.build(name, input_shape, num_classes)`` makes the same
architectures as on CIFAR-10 for any input; here the built-in 8x8 digits. The small
Inception is left out of this CPU example (about a second per epoch on a laptop CPU):
add ``"inception"`` to the list when you have a GPU.

Run: ``pytest --rethink examples/test_paper_models.py``
"""
import pytest

from rethink_checks.models import build

# Learning rates for 10-image batches on digits (the paper's 0.1 / 0.01 are for CIFAR-10).
LEARNING_RATES = {"mlp1x512": 0.1, "mlp3x512": 0.05, "alexnet": 0.03}

# The memorization side of the paper for every model: fit the real labels, fit random
# labels, and compare the epochs each took (Figure 1b's slowdown). Settings shared by
# all models go in the marker; the marker's `checks` decides which items exist.
pytestmark = pytest.mark.rethink(
    checks=["true_labels", "random_labels", "slowdown"],
    train_size=100, batch_size=10, lr_decay=1.0, max_epochs=150,
)


@pytest.fixture(params=sorted(LEARNING_RATES))
def model_name(request):
    return request.param


@pytest.fixture
def rethink_model(model_name):
    # Items are named rethink[<check>-<model>], e.g. rethink[random_labels-alexnet].
    return lambda input_shape, num_classes: build(model_name, input_shape, num_classes)


@pytest.fixture
def rethink_config(model_name):
    # Per-model settings: here only the learning rate differs.
    return {"lr": LEARNING_RATES[model_name]}
