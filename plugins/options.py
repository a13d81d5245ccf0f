"""The plugin's command-line and ini options: one table, parsed and validated in one place.

Every option ``name`` exists as ``--rethink-<name>`` (dashes) and as the ini key
``rethink_<name>``. Values are parsed here (not by argparse) so that a bad value becomes a
``pytest.UsageError`` that names the option, the value and what is allowed. This module
never imports torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def _int(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError
        return value
    parse.allowed = f"an integer >= {low}"  # type: ignore[attr-defined]
    return parse


def _float(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if value != value or value < low or (low_open and value == low):
            raise ValueError
        if high is not None and value > high:
            raise ValueError
        return value
    bracket = "(" if low_open else "["
    parse.allowed = (f"a number in {bracket}{low}, {high}]" if high is not None  # type: ignore[attr-defined]
                     else f"a number {'>' if low_open else '>='} {low}")
    return parse


def _device(text: str) -> str:
    if not DEVICE_PATTERN.match(text):
        raise ValueError
    return text


_device.allowed = "auto, cpu, cuda, cuda:N"  # type: ignore[attr-defined]


def _data(text: str) -> str:
    """``text`` if :func:`rethink_checks.specs.parse_spec` accepts it (its DataError otherwise).

    rethink_checks.specs imports neither torch nor the rest of the library.
    """
    from rethink_checks.specs import parse_spec

    parse_spec(text)
    return text


_data.allowed = "a data spec"  # type: ignore[attr-defined]
_data.explains = True  # type: ignore[attr-defined]  # its errors name the spec and what is allowed


def _names(text: str | list[str]) -> tuple[str, ...]:
    parts = text if isinstance(text, list) else [text]
    names = tuple(n.strip() for p in parts for n in str(p).split(",") if n.strip())
    if not names:
        raise ValueError
    return names


_names.allowed = "a comma-separated list of check names"  # type: ignore[attr-defined]


def _levels(text: str | list[str]) -> tuple[float, ...]:
    levels = tuple(float(v) for v in _names(text))
    if any(not 0.0 <= v <= 1.0 for v in levels):
        raise ValueError
    return levels


_levels.allowed = "comma-separated numbers in [0, 1], e.g. 0,0.5,1"  # type: ignore[attr-defined]


def _text(text: str) -> str:
    if not str(text).strip():
        raise ValueError
    return str(text).strip()


_text.allowed = "a non-empty string"  # type: ignore[attr-defined]


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if str(text).strip() not in allowed:
            raise ValueError
        return str(text).strip()
    parse.allowed = " | ".join(allowed)  # type: ignore[attr-defined]
    return parse


def _model_specs(text: str | list[str]) -> tuple[str, ...]:
    """Zero-code model specs ``TARGET:NAME`` (checked for form only; imported at configure)."""
    parts = text if isinstance(text, list) else [text]
    specs = tuple(str(p).strip() for p in parts if str(p).strip())
    if not specs:
        raise ValueError(f"no spec; allowed: {_model_specs.allowed}")  # type: ignore[attr-defined]
    for spec in specs:
        target, sep, name = spec.rpartition(":")
        if not target or not sep or not name.isidentifier():
            raise ValueError(f"{spec!r} is not TARGET:NAME; allowed: "
                             f"{_model_specs.allowed}")  # type: ignore[attr-defined]
    return tuple(dict.fromkeys(specs))


_model_specs.allowed = ("torchvision:NAME, pkg.module:factory_or_class or path/to/file.py:attr "  # type: ignore[attr-defined]
                        "(repeat the option for several models)")
_model_specs.explains = True  # type: ignore[attr-defined]


def _fit_field(name: str) -> Callable[[Any], Any]:
    """A parser that validates through ``FitConfig`` itself, so the command line and ini refuse a
    value with the library's own message ("FitConfig.<name>=... is invalid; allowed: ...")."""
    return _settings_field(name, lambda settings: getattr(settings.fit, name), f"FitConfig.{name}")


def _check_field(name: str) -> Callable[[Any], Any]:
    """:func:`_fit_field` for a ``CheckSettings`` field (its message: "CheckSettings.<name>=...")."""
    return _settings_field(name, lambda settings: getattr(settings, name), f"CheckSettings.{name}")


def _settings_field(name: str, read: Callable[[Any], Any], where: str) -> Callable[[Any], Any]:
    def parse(text: Any) -> Any:
        from rethink_checks.errors import SettingsError
        from rethink_checks.settings import CheckSettings

        if isinstance(text, list):  # an ini "args" value: its words, each maybe comma-separated
            text = ",".join(map(str, text))
        try:
            return read(CheckSettings.from_mapping({name: text}))
        except SettingsError as exc:
            raise ValueError(str(exc)) from None
    parse.allowed = f"see {where}"  # type: ignore[attr-defined]
    parse.explains = True  # type: ignore[attr-defined]
    return parse


def _expect(text: str | list[str]) -> dict[str, str]:
    """``random_labels=not_memorized, gaussian=not_memorized`` checked by settings.parse_expect."""
    from rethink_checks.settings import parse_expect

    return parse_expect(text if isinstance(text, str) else ",".join(map(str, text)))


_expect.allowed = "CHECK=EXPECTATION pairs"  # type: ignore[attr-defined]
_expect.explains = True  # type: ignore[attr-defined]  # its errors name the field and what is allowed


@dataclass(frozen=True)
class Option:
    """One plugin option: its name, parser, help, and the CheckSettings key it feeds (if any)."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    key: str | None = None
    metavar: str = "VALUE"
    ini_type: str | None = None
    action: str | None = None  # argparse action, e.g. "append" for a repeatable option

    @property
    def flag(self) -> str:
        return "--rethink-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "rethink_" + self.name


def _fit_option(name: str, help: str, metavar: str) -> Option:
    """An option that sets the ``FitConfig`` field ``name``, validated by FitConfig itself."""
    return Option(name, _fit_field(name), help, key=name, metavar=metavar)


OPTIONS: tuple[Option, ...] = (
    Option("checks", _names, "checks to run, comma-separated (default: every check)",
           metavar="A,B", ini_type="args"),
    Option("data", _data, "training data: digits (default, built in) | cifar10:ROOT | mnist:ROOT "
           "| folder:ROOT, whitened per image unless ,raw (,paper: the paper's 28x28 crop too); "
           "a rethink_data fixture wins", metavar="SPEC"),
    Option("train_size", _int(1), "train on a seeded subset of N training examples",
           key="train_size", metavar="N"),
    Option("device", _device, "device: auto (default) | cpu | cuda | cuda:N", key="device",
           metavar="DEV"),
    Option("seed", _int(0), "seed for data subsets, corruptions and initialisation (default 0)",
           key="seed", metavar="N"),
    Option("seeds", _int(1), "fits per check, each with its own derived seed; metrics become "
           "means with .std/.ci_low/.ci_high (default 1)", key="seeds", metavar="N"),
    Option("expect", _expect, "per-check expected verdict, e.g. random_labels=not_memorized "
           "(met/not_met, memorized/not_memorized, fitted/not_fitted)", key="expect",
           metavar="CHECK=WANT,..."),
    Option("max_epochs", _int(1), "epoch budget of every fit (default 100)", key="max_epochs",
           metavar="N"),
    Option("max_steps", _fit_field("max_steps"), "optimizer-step budget of every fit, beside "
           "max_epochs (default: none)", key="max_steps", metavar="N"),
    _fit_option("optimizer", "optimizer of every fit: sgd (the paper's, momentum 0.9; default) | "
                "adam | adamw | rmsprop", "NAME"),
    _fit_option("lr", "base learning rate (default: the model's rethink_lr or 0.01 for sgd, 1e-3 "
                "for the Adam family and rmsprop)", "LR"),
    _fit_option("batch_size", "training batch size (default 128; digits 32; user data: a fraction "
                "of a small training set)", "N"),
    _fit_option("schedule", "learning-rate schedule over the fit's step budget: paper (x0.95 per "
                "391 steps; default) | constant | cosine | linear | onecycle", "NAME"),
    _fit_option("warmup", "linear lr warmup before the schedule: steps (>= 1) or a fraction of the "
                "step budget (< 1); default 0", "STEPS|FRAC"),
    _fit_option("precision", "auto (bf16 on a GPU that has it, else fp32; default) | fp32 | bf16 | "
                "fp16 (with a gradient scaler)", "P"),
    Option("lr_decay_steps", _fit_field("lr_decay_steps"), "optimizer steps per x lr_decay of the "
           "learning rate (default 391: the paper's epoch of 50,000 images at batch 128)",
           key="lr_decay_steps", metavar="N"),
    Option("eval_every", _fit_field("eval_every"), "measure the whole training set at least every "
           "N epochs (default 5; every epoch once near the target)", key="eval_every", metavar="N"),
    Option("eval_margin", _fit_field("eval_margin"), "measure every epoch once the running "
           "train-mode accuracy is within this margin of the target (default 0.1)",
           key="eval_margin", metavar="ACC"),
    Option("test_sample", _fit_field("test_sample"), "test examples measured during each fit "
           "(default auto: max(1000, training-set size)); the reported test accuracy is always "
           "the whole split", key="test_sample", metavar="N"),
    Option("time_budget", _float(0.0, low_open=True),
           "wall-clock seconds for each check, shared by all of its fits (CheckSettings.time_budget)",
           key="time_budget", metavar="SECONDS"),
    Option("fit_threshold", _float(0.0, 1.0, low_open=True),
           "true_labels: train accuracy needed (default 1.0)", key="fit_threshold", metavar="ACC"),
    Option("memorize_threshold", _float(0.0, 1.0, low_open=True),
           "randomizations: train accuracy needed (default 0.99)", key="memorize_threshold",
           metavar="ACC"),
    Option("max_slowdown", _float(0.0, low_open=True),
           "slowdown: largest allowed epochs-to-fit ratio against true labels (default 10)",
           key="max_slowdown", metavar="RATIO"),
    Option("slowdown_randomizations", _check_field("slowdown_randomizations"),
           "slowdown: randomizations timed against true labels, comma-separated, or 'all' (the "
           "paper's Figure 1b four; default random_labels)", key="slowdown_randomizations",
           metavar="NAME,NAME", ini_type="args"),
    Option("max_regularizer_gain", _float(-1.0, 1.0),
           "regularizers: largest allowed test-accuracy cost of removing them (default 0.10)",
           key="max_regularizer_gain", metavar="ACC"),
    Option("error_tolerance", _float(0.0, 1.0),
           "partial_labels: allowed decrease of test error between levels (default 0.02)",
           key="error_tolerance", metavar="ERR"),
    Option("partial_levels", _levels, "partial_labels: corruption levels (default 0,0.2,...,1)",
           key="partial_levels", metavar="P,P", ini_type="args"),
    Option("json", _text, "write the session's metrics and curves as JSON to PATH", metavar="PATH"),
    Option("plots", _text, "write Figure 1 style PNGs into DIR (needs matplotlib)", metavar="DIR"),
    Option("storage", _text, "folder of saved baselines (default .rethink under the rootdir)",
           metavar="DIR"),
    Option("save", _text, "save this session's metrics as baseline NAME", metavar="NAME"),
    Option("threads", _int(1), "torch CPU threads per pytest process (default: torch's own; "
           "under xdist: CPU cores / workers)", metavar="N"),
    Option("suspects", _int(1), "add the rethink[suspects] item to every model: the N training "
           "examples whose label looks wrong (k-fold fits + area under the margin; stops when the "
           "list is stable; -k memorization selects it too; with --rethink-plots an image grid)",
           key="suspects", metavar="N"),
    Option("progress", _choice("auto", "none", "lines", "bar"), "live progress of running checks: "
           "auto (default: a bar on a terminal, plain lines otherwise, none under -q) | none | "
           "lines | bar; under pytest-xdist the controller shows every worker's running item",
           metavar="MODE"),
    Option("html", _text, "write a self-contained HTML report to PATH, rewritten after every "
           "item (verdicts, curves, settings, environment)", metavar="PATH"),
    Option("progress_interval", _float(0.0), "seconds between live progress lines of a running "
           "check (default 5; 0: every epoch; the bar redraws every 0.5 s at most)", metavar="SECONDS"),
    Option("model", _model_specs, "zero-code entry: run the checks on model SPEC without a test "
           "file: torchvision:NAME | pkg.module:factory_or_class | path/file.py:attr (repeatable)",
           metavar="SPEC", ini_type="linelist", action="append"),
)

OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Register the ``rethink`` option group and its ini keys."""
    group = parser.getgroup("rethink", "rethink_checks: randomization tests of generalization")
    group.addoption("--rethink", action="store_true", default=False,
                    help="run the randomization checks for every module defining rethink_model")
    for opt in OPTIONS:
        extra = {"action": opt.action} if opt.action else {}
        group.addoption(opt.flag, dest="rethink_" + opt.name, default=None, metavar=opt.metavar,
                        help=opt.help, **extra)
        parser.addini(opt.ini, opt.help, type=opt.ini_type, default=None)
    group.addoption("--rethink-compare", dest="rethink_compare", nargs="?", const="latest",
                    default=None, metavar="NAME",
                    help="compare with saved baseline NAME (default: the latest saved)")
    group.addoption("--rethink-compare-fail", dest="rethink_compare_fail", action="append",
                    default=None, metavar="EXPR",
                    help="fail the session on a regression, e.g. random_labels.epochs_to_fit:25%% "
                         "(repeatable)")
    parser.addini("rethink_compare_fail", "compare-fail expressions, one per line",
                  type="linelist", default=None)


def _parse(opt: Option, raw: Any, source: str) -> Any:
    try:
        return opt.parse(raw)
    except (TypeError, ValueError) as exc:
        if getattr(opt.parse, "explains", False):
            raise pytest.UsageError(f"{source}: invalid value {raw!r}: {exc}") from None
        raise pytest.UsageError(
            f"{source}: invalid value {raw!r}; allowed: {opt.parse.allowed}"  # type: ignore[attr-defined]
        ) from None


@dataclass
class PluginOptions:
    """Validated option values, split by where they came from (for the precedence rules)."""

    cli: dict[str, Any] = field(default_factory=dict)
    ini: dict[str, Any] = field(default_factory=dict)
    compare: str | None = None
    compare_fail: tuple[str, ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        """The CLI value, else the ini value, else ``default``."""
        return self.cli.get(name, self.ini.get(name, default))

    def settings_layers(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(ini, cli) mappings of CheckSettings keys; the model's own settings go between."""
        def keyed(values: dict[str, Any]) -> dict[str, Any]:
            return {OPTIONS_BY_NAME[n].key: v for n, v in values.items()
                    if OPTIONS_BY_NAME[n].key is not None}
        return keyed(self.ini), keyed(self.cli)


def read_options(config: pytest.Config) -> PluginOptions:
    """Parse and validate every rethink option; raise ``pytest.UsageError`` on a bad value."""
    result = PluginOptions()
    for opt in OPTIONS:
        raw = config.getoption("rethink_" + opt.name)
        if raw is not None:
            result.cli[opt.name] = _parse(opt, raw, opt.flag)
        raw_ini = config.getini(opt.ini)
        if raw_ini not in (None, "", []):
            result.ini[opt.name] = _parse(opt, raw_ini, f"ini option {opt.ini}")
    compare = config.getoption("rethink_compare")
    result.compare = compare.strip() if compare else None
    fails = config.getoption("rethink_compare_fail") or config.getini("rethink_compare_fail") or []
    result.compare_fail = tuple(str(f).strip() for f in fails if str(f).strip())
    return result
