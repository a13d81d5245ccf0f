"""The paper's models (appendix A of Zhang et al. 2017) on the default data.

``rethink_checks.models.build(name, input_shape, num_classes)`` builds the paper's
architectures for any input: here the plugin's default data, the 1,437 whitened 8x8 training
digits, trained with the digits' defaults (batch 32, up to 300 epochs; see docs/plugin.md)
under the paper's schedule (x0.95 every 391 optimizer steps) and each model's paper learning rate (0.01 for the MLPs and
AlexNet, 0.1 for Inception, set by ``build`` as ``model.rethink_lr``).

The checks are the memorization side of the paper (Table 1 and Figure 1a): fit the true
labels, memorize random labels, shuffled pixels, random pixels and Gaussian noise, and
compare the epochs each took (slowdown). Run: ``pytest --rethink examples/test_paper_models.py -v``
"""
import pytest

from rethink_checks.models import build

# The small Inception works the same way ("inception") but costs minutes on a CPU: add it
# when the checks run on a GPU.
MODELS = ["mlp1x512", "mlp3x512", "alexnet"]

pytestmark = pytest.mark.rethink(
    checks=["true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian",
            "slowdown"],
    # Figure 1b times every randomization; the default times random labels alone (the noise
    # inputs fit sooner). Their fits run here anyway, so "all" costs nothing extra.
    slowdown_randomizations="all",
    # No max_slowdown here: the digits carry their own calibrated limit (20x, where CIFAR-10
    # keeps the paper's 10x): true labels fit in a few epochs on them, so noise takes
    # relatively longer (MLP 1x512: about 14x). See docs/checks.md, the calibration panel.
)


@pytest.fixture(params=MODELS)
def model_name(request):
    return request.param


@pytest.fixture
def rethink_model(model_name):
    # Items are named rethink[<check>-<model>], e.g. rethink[random_labels-mlp1x512].
    return lambda input_shape, num_classes: build(model_name, input_shape, num_classes)


@pytest.fixture
def rethink_config(model_name):
    # Per-model settings. The MLPs train on every training digit with the defaults; the
    # convolutional AlexNet is about 10x slower per epoch on a CPU, so it gets a seeded
    # subset of 400 digits here. Return {} for it on a GPU.
    return {"train_size": 400} if model_name == "alexnet" else {}
