"""A zero-argument model factory from what a user gives: a module, or a factory taking the data's
input shape, class count or vocabulary size by name (or input_shape and num_classes by position).

The plugin adapts the ``rethink_model`` fixture's value with :func:`model_factory`; plain-Python
users get the same adaptation, e.g. ``run_check("random_labels", model_factory(MyNet,
data.input_shape, data.num_classes), data)``.
"""
from __future__ import annotations

import inspect
import traceback
from typing import Any, Callable

from .errors import ModelError

__all__ = ["model_factory", "factory_arguments"]

_KNOWN = ("input_shape", "num_classes", "vocab_size")


def factory_arguments(fn: Callable[..., Any], input_shape: tuple[int, ...], num_classes: int,
                       vocab_size: int | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What to call ``fn`` with: the keywords it names (input_shape, num_classes, vocab_size),
    or (input_shape, num_classes) positionally for a factory of two required positional
    parameters named otherwise, such as ``lambda shape, k: ...``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return (), {}
    values = {"input_shape": tuple(input_shape), "num_classes": int(num_classes),
              "vocab_size": None if vocab_size is None else int(vocab_size)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return (), {k: v for k, v in values.items() if v is not None}
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    kwargs = {k: v for k, v in values.items() if k in named and v is not None}
    unknown = [p for p in params if p.default is p.empty and p.name not in _KNOWN
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not unknown:
        return (), kwargs
    positional = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in unknown)
    if not kwargs and len(unknown) == 2 and positional:
        return (values["input_shape"], values["num_classes"]), {}
    raise ModelError(
        f"the rethink_model factory {getattr(fn, '__qualname__', fn)!r} requires "
        f"{', '.join(p.name for p in unknown)}, which the plugin cannot supply: a factory takes no "
        "arguments, keywords named input_shape / num_classes / vocab_size, or exactly two "
        "positional parameters (input_shape, num_classes); give the others defaults")


def model_factory(obj: Any, input_shape: tuple[int, ...], num_classes: int,
                  vocab_size: int | None = None) -> Callable[[], Any]:
    """A zero-argument factory from what ``rethink_model`` returned (module or factory)."""
    from torch import nn

    if isinstance(obj, nn.Module):
        return obj  # training.fit copies a module, never trains it in place
    if not callable(obj):
        raise ModelError(
            f"the rethink_model fixture returned {type(obj).__module__}.{type(obj).__qualname__}; "
            "expected a torch.nn.Module or a factory returning one (a factory may take "
            "input_shape and/or num_classes keyword arguments)")
    args, kwargs = factory_arguments(obj, input_shape, num_classes, vocab_size)
    given = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]

    def factory() -> Any:
        try:
            return obj(*args, **kwargs)
        except Exception as exc:  # the user's code: say where, keep the cause chained
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = ModelError(f"the rethink_model factory raised {type(exc).__name__}: {exc} "
                               f"(at {frame.filename}:{frame.lineno}, given "
                               f"{', '.join(given) or 'no arguments'})")
            error.rethink_factory = True  # type: ignore[attr-defined] - see run_item
            raise error from exc

    factory.__qualname__ = getattr(obj, "__qualname__", "factory")
    return factory
