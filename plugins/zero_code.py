"""The zero-code entry: ``--rethink-model=SPEC`` runs the checks on a model without a test file.

SPEC is ``torchvision:NAME`` (``torchvision.models.get_model_builder(NAME)(weights=None,
num_classes=K)``: no download; a 1-channel input is repeated to the 3 channels the
torchvision models take), ``timm:NAME`` (``timm.create_model(NAME, pretrained=False,
num_classes=K, in_chans=C)``, with ``img_size=(H, W)`` where the model takes one; timm is
optional, a clear error without it), ``pkg.module:attr`` or ``path/to/file.py:attr`` (a factory or an
``nn.Module`` class taking ``input_shape`` / ``num_classes`` / ``vocab_size`` keywords, or a
module: the same rules as a ``rethink_model`` fixture's value). Each spec becomes a
synthetic module node ``rethink-model::SPEC`` under the session, holding a ``rethink_model``
fixture, and is collected by the same machinery as a test module (:func:`collect.collect`),
so every option applies. The controller resolves each spec at configure time and builds it
once on the ``--rethink-data`` data (one forward pass of two examples): a spec that cannot be
imported or built is a ``pytest.UsageError`` naming the spec and the error.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

NODE_PREFIX = "rethink-model::"


def _usage(spec: str, what: str, exc: BaseException | None = None) -> pytest.UsageError:
    cause = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return pytest.UsageError(f"--rethink-model={spec}: {what}{cause}")


# ---------------------------------------------------------------- resolving a spec

def resolve(spec: str, invocation_dir: Path) -> Any:
    """The factory, class or module a spec names; a ``pytest.UsageError`` when it cannot be had."""
    target, _, name = spec.rpartition(":")
    if target == "torchvision":
        return torchvision_factory(spec, name)
    if target == "timm":
        return timm_factory(spec, name)
    if target.endswith(".py"):
        module = _load_file(spec, (invocation_dir / target).resolve())
    else:
        module = _import(spec, target, invocation_dir)
    try:
        obj = getattr(module, name)
    except AttributeError:
        raise _usage(spec, f"module {target!r} has no attribute {name!r}") from None
    if not callable(obj) and not _is_module(obj):
        raise _usage(spec, f"{target}:{name} is a {type(obj).__name__}; expected a factory, an "
                     "nn.Module class or an nn.Module")
    return obj


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def _import(spec: str, target: str, invocation_dir: Path) -> types.ModuleType:
    """``import target``; a module next to where pytest was started is found too, as with python -m."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        top = target.split(".")[0]
        if exc.name != top or str(invocation_dir) in sys.path:
            raise _usage(spec, f"cannot import {target!r}", exc) from None
    except Exception as exc:  # the user's module raised while importing
        raise _usage(spec, f"importing {target!r} raised", exc) from None
    sys.path.insert(0, str(invocation_dir))
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise _usage(spec, f"cannot import {target!r}", exc) from None


def _load_file(spec: str, path: Path) -> types.ModuleType:
    if not path.is_file():
        raise _usage(spec, f"no such file {str(path)!r}")
    name = "rethink_model_file_" + path.stem
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # classes defined there stay importable by name (copies, pickles)
    try:
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:
        sys.modules.pop(name, None)
        raise _usage(spec, f"importing {str(path)!r} raised", exc) from None
    return module


def torchvision_factory(spec: str, name: str) -> Any:
    """A factory ``(input_shape, num_classes)`` for the torchvision model NAME, untrained."""
    try:
        from torchvision import models
    except ImportError as exc:
        raise _usage(spec, "torchvision is not installed (pip install torchvision)", exc) from None
    try:
        builder = models.get_model_builder(name)
    except ValueError:
        raise _usage(spec, f"torchvision has no model {name!r}; see "
                     "torchvision.models.list_models()") from None

    def factory(input_shape: tuple[int, ...], num_classes: int) -> Any:
        from rethink_checks.errors import ModelError

        if len(input_shape) != 3 or input_shape[0] not in (1, 3):
            raise ModelError(f"{spec} takes images of 1 or 3 channels (C, H, W); the data's inputs "
                             f"have shape {tuple(input_shape)}")
        model = builder(weights=None, num_classes=num_classes)
        return gray_to_rgb()(model) if input_shape[0] == 1 else model

    factory.__qualname__ = factory.__name__ = spec
    return factory


def timm_factory(spec: str, name: str) -> Any:
    """A factory ``(input_shape, num_classes)`` for the timm model NAME, untrained
    (``timm.create_model(NAME, pretrained=False, num_classes=K, in_chans=C)``, and ``img_size``
    for the models that take one, such as vision transformers)."""
    try:
        import timm
    except ImportError as exc:
        raise _usage(spec, "timm is not installed (pip install 'rethink-checks[timm]' or pip install timm)",
                     exc) from None
    if not timm.list_models(name):
        raise _usage(spec, f"timm has no model {name!r}; see timm.list_models()")

    def factory(input_shape: tuple[int, ...], num_classes: int) -> Any:
        from rethink_checks.errors import ModelError

        if len(input_shape) != 3:
            raise ModelError(f"{spec} takes images (C, H, W); the data's inputs have shape {tuple(input_shape)}")
        channels, height, width = input_shape
        common = dict(pretrained=False, num_classes=num_classes, in_chans=channels)
        try:
            return timm.create_model(name, img_size=(height, width), **common)
        except TypeError:  # a model without a fixed input size (convolutional): it adapts by pooling
            return timm.create_model(name, **common)

    factory.__qualname__ = factory.__name__ = spec
    return factory


@functools.cache
def gray_to_rgb() -> type:
    """The nn.Module class that feeds a 1-channel batch to a 3-channel model (channel repeated)."""
    from torch import nn

    class GrayToRGB(nn.Module):
        """Repeats a (N, 1, H, W) batch to (N, 3, H, W), as grayscale images are shown in colour."""

        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Any) -> Any:
            return self.model(x.expand(-1, 3, -1, -1))

    GrayToRGB.__module__ = __name__
    return GrayToRGB


def trial_build(spec: str, obj: Any, dataset: Any) -> None:
    """Build the model for ``dataset`` and run two examples through it; UsageError on failure."""
    import torch

    from rethink_checks.factories import model_factory

    try:
        model = model_factory(obj, dataset.input_shape, dataset.num_classes,
                              getattr(dataset, "vocab_size", None))()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"it returned {type(model).__name__}, not an nn.Module")
        from rethink_checks.adapters import logits_of

        model.eval()
        with torch.no_grad():
            out = logits_of(model(dataset.train_x[:2]))  # a tensor, .logits, ["logits"], a tuple's first
        expected = (min(2, len(dataset.train_x)), dataset.num_classes)
        if tuple(out.shape) != expected:
            shape = tuple(out.shape)
            raise TypeError(f"its output for a batch of {expected[0]} is {shape}; expected "
                            f"{expected} (batch, num_classes)")
    except Exception as exc:
        raise _usage(spec, f"building it for {getattr(dataset, 'name', 'the data')} (input shape "
                     f"{tuple(dataset.input_shape)}, {dataset.num_classes} classes) failed",
                     exc) from None


def configure(config: pytest.Config, state: Any) -> None:
    """Resolve every ``--rethink-model`` spec into ``state.models``; the controller also builds each."""
    specs = state.options.get("model") or ()
    invocation_dir = Path(config.invocation_params.dir)
    for spec in specs:
        state.models[spec] = resolve(spec, invocation_dir)
    if specs and not state.is_worker:
        from rethink_checks.errors import RethinkError

        try:
            dataset = state.load_data(state.data_default)
        except RethinkError as exc:
            raise pytest.UsageError(f"--rethink-model: loading the data {state.data_default!r} to "
                                    f"build the models failed: {exc}") from None
        for spec, obj in state.models.items():
            trial_build(spec, obj, dataset)


# ---------------------------------------------------------------- collection

class SpecModule(pytest.Module):
    """A module node without a file: its object is a synthetic module holding ``rethink_model``."""

    rethink_label: str = ""
    rethink_object: Any = None

    def _getobj(self) -> types.ModuleType:
        module = types.ModuleType("rethink_model_spec")
        obj = self.rethink_object

        def rethink_model() -> Any:
            return obj

        module.rethink_model = pytest.fixture(rethink_model)  # type: ignore[attr-defined]
        return module


def collect(session: pytest.Session, specs: dict[str, Any]) -> list[pytest.Item]:
    """The items of every spec, reported to pytest as if collected from a module."""
    made: list[pytest.Item] = []
    for spec, obj in specs.items():
        node = SpecModule.from_parent(session, path=session.config.rootpath / "rethink-model",
                                      name=spec, nodeid=NODE_PREFIX + spec)
        node.rethink_label = spec
        node.rethink_object = obj
        found = [i for i in node.collect() if isinstance(i, pytest.Item)]
        session.ihook.pytest_collectreport(report=pytest.CollectReport(
            node.nodeid, "passed", None, list(found)))
        for item in found:
            session.ihook.pytest_itemcollected(item=item)
        made.extend(found)
    return made
