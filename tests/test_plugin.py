"""The ``rethink`` pytest plugin, driven through pytester on tiny digits subsets.

Every run uses an MLP on 40 digits, a few epochs and thresholds chosen for the path under
test (pass or fail): these tests check the plugin's plumbing, not the paper's claims.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import sklearn.datasets  # noqa: F401 - see below
import torch  # noqa: F401 - loaded once here: pytester's in-process runs unload modules
# they import, and extension modules such as torch must not be imported a second time

import rethink_checks.capacity  # noqa: F401
import rethink_checks.plots  # noqa: F401
import rethink_checks.theory  # noqa: F401
import rethink_checks.training  # noqa: F401
from rethink_checks.checks import CHECKS
from rethink_checks.checks.registry import default_names

try:  # the plots test draws in-process too
    import matplotlib.pyplot  # noqa: F401
except ImportError:  # pragma: no cover - optional extra
    pass

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: what a plain --rethink runs: every check but those run only on request (suspects)
DEFAULT_CHECKS = list(default_names())
FAST = dict(train_size=40, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=3, device="cpu")
LENIENT = dict(FAST, batch_size=10, max_epochs=8, fit_threshold=0.4, memorize_threshold=0.4,
               max_slowdown=100.0,
               max_regularizer_gain=1.0, error_tolerance=1.0, partial_levels=(0.0, 1.0),
               min_capacity=5, capacity_precision=0.5, min_memorization_auc=0.0)
STRICT = dict(FAST, max_epochs=1, fit_threshold=1.0, memorize_threshold=1.0, max_slowdown=1.0,
              max_regularizer_gain=0.0, error_tolerance=0.0, partial_levels=(0.0, 1.0),
              capacity_precision=0.5)

MODEL = '''
@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=128)
'''


def module(settings: dict | None = None, body: str = MODEL, head: str = "") -> str:
    """A test module with a rethink marker holding ``settings`` and a rethink_model fixture."""
    marker = f"pytestmark = pytest.mark.rethink(**{settings!r})\n" if settings else ""
    return ("import pytest\nimport torch\nfrom rethink_checks.models import mlp\n" + head
            + "\n" + marker + body)


def entries(path) -> dict[str, dict]:
    doc = json.loads(path.read_text())
    return {item["nodeid"].split("::", 1)[1]: item for item in doc["items"]}


# ---------------------------------------------------------------- off by default

def test_without_flag_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(FAST))
    result = pytester.runpytest("--collect-only", "-q")
    assert "rethink[" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_without_flag_neither_torch_nor_the_engine_is_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
        import sys
        def test_nothing_heavy_loaded():
            loaded = [m for m in ("torch", "rethink_checks") if m in sys.modules]
            assert loaded == []
        def rethink_model():
            return None
    ''')
    result = pytester.runpytest_subprocess()
    assert "rethink-checks" in result.stdout.str()  # the plugin was loaded, and stayed idle
    result.assert_outcomes(passed=1)


# ---------------------------------------------------------------- items and selection

def test_one_item_per_check_with_stable_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(FAST))
    result = pytester.runpytest("--rethink", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::rethink[" in line]
    assert ids == [f"test_model.py::rethink[{name}]" for name in DEFAULT_CHECKS]


def test_parametrized_fixture_gives_check_then_param_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_archs=module(body='''
@pytest.fixture(params=["narrow", "wide"])
def rethink_model(request):
    width = {"narrow": 8, "wide": 64}[request.param]
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=width)
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels,gaussian",
                                "--collect-only", "-q")
    ids = {line for line in result.stdout.lines if "::rethink[" in line}
    assert ids == {f"test_archs.py::rethink[{c}-{p}]" for c in ("true_labels", "gaussian")
                   for p in ("narrow", "wide")}


def test_selection_by_option_marker_ini_and_k(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=module(dict(FAST, checks=["gaussian", "slowdown"])),
                        test_b=module(FAST))
    pytester.makeini("[pytest]\nrethink_checks = true_labels random_labels\n")

    def collected(*args: str) -> set[str]:
        out = pytester.runpytest("--rethink", "--collect-only", "-q", *args).stdout.lines
        return {line for line in out if "::rethink[" in line}

    assert collected() == {"test_a.py::rethink[gaussian]", "test_a.py::rethink[slowdown]",
                           "test_b.py::rethink[true_labels]", "test_b.py::rethink[random_labels]"}
    assert collected("--rethink-checks=partial_labels") == {
        "test_a.py::rethink[partial_labels]", "test_b.py::rethink[partial_labels]"}
    assert collected("-k", "random") == {"test_b.py::rethink[random_labels]"}


# ---------------------------------------------------------------- running checks

def test_every_check_passes_with_metrics_on_reports_junit_and_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(LENIENT))
    reprec = pytester.inline_run("--rethink", "--rethink-json=out.json", "--junitxml=junit.xml")
    passed, skipped, failed = reprec.listoutcomes()
    assert not failed and not skipped and len(passed) == len(DEFAULT_CHECKS)
    calls = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    for report in calls:
        check = report.rethink["check"]
        assert report.rethink["outcome"] == "passed" and report.rethink["metrics"]
        assert all(name.startswith(f"rethink.{check}.") for name, _ in report.user_properties)
    by_check = {r.rethink["check"]: r for r in calls}
    assert by_check["true_labels"].rethink["metrics"]["train_accuracy"] >= 0.4
    assert "slowdown.max" in by_check["slowdown"].rethink["metrics"]
    assert [row["p"] for row in by_check["partial_labels"].rethink["tables"]["sweep"]] == [0.0, 1.0]

    junit = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert float(props["rethink.true_labels.train_accuracy"]) >= 0.4
    assert "rethink.regularizers.gain" in props and "rethink.slowdown.slowdown.max" in props

    doc = json.loads((pytester.path / "out.json").read_text())
    assert doc["version"] and doc["machine"]["torch"] and doc["machine"]["cpu"]
    # the session's settings only as layered defaults: package < the default data's (digits: 300
    # epochs, batch 32, max_slowdown 20) < ini < command line; each item has its own
    assert "settings" not in doc and doc["seed"] == 0
    assert doc["layered_defaults"]["layers"] == ["package", "data:digits", "ini", "command line"]
    defaults = doc["layered_defaults"]
    assert defaults["fit"]["max_epochs"] == 300 and defaults["max_slowdown"] == 20.0
    items = entries(pytester.path / "out.json")
    assert set(items) == {f"rethink[{c}]" for c in DEFAULT_CHECKS}
    entry = items["rethink[random_labels]"]
    assert entry["model"] == "test_model" and entry["outcome"] == "passed"
    assert entry["settings"]["fit"]["max_epochs"] == 8  # the marker's settings, per item
    assert len(entry["curves"]["random_labels"]["train_accuracy"]) == entry["metrics"]["epochs"]


def test_every_check_fails_on_strict_thresholds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(dict(STRICT, min_capacity=40)))
    checks = [c for c in DEFAULT_CHECKS if c != "expressivity"]  # an exact construction: no budget to miss
    result = pytester.runpytest("--rethink", "--rethink-checks=" + ",".join(checks))
    result.assert_outcomes(failed=len(checks))
    result.stdout.fnmatch_lines(["*rethink summary*", "*test_model*true_labels*FAIL*",
                                 "legend:*", "*FAILED test_model.py::rethink?slowdown?*"])
    assert "criterion: train accuracy >= 1.0 on true labels" in result.stdout.str()


def test_ini_options_train_size_and_the_option_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(body=MODEL))
    pytester.makeini("[pytest]\nrethink_train_size = 25\nrethink_device = cpu\n"
                     "rethink_max_epochs = 2\nrethink_fit_threshold = 0.04\n"
                     "rethink_time_budget = 600\nrethink_seed = 3\nrethink_json = ini.json\n")
    pytester.runpytest("--rethink", "--rethink-checks=true_labels").assert_outcomes(passed=1)
    entry = entries(pytester.path / "ini.json")["rethink[true_labels]"]
    s = entry["settings"]
    assert (s["train_size"], s["fit"]["device"], s["fit"]["max_epochs"], s["fit_threshold"],
            s["time_budget"], s["seed"]) == (25, "cpu", 2, 0.04, 600.0, 3)
    assert entry["curves"]["true_labels"]["step"][0] == 1  # 25 examples: one batch of 32
    help_text = pytester.runpytest("--help").stdout.str()
    group = help_text[help_text.index("rethink_checks: randomization tests"):]
    for flag in ("--rethink-device", "--rethink-seed", "--rethink-max-epochs",
                 "--rethink-time-budget", "--rethink-fit-threshold", "--rethink-json",
                 "--rethink-plots", "--rethink-train-size", "--rethink-data"):
        assert flag in group, flag
    assert "rethink_time_budget" in help_text and "rethink_plots" in help_text  # ini keys


def test_markers_select_rethink_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_slow=module(body="pytestmark = [pytest.mark.slow, "
                                         "pytest.mark.rethink(checks=['gaussian'])]\n" + MODEL),
                        test_fast=module(dict(checks=["true_labels"])))
    pytester.makeini("[pytest]\nmarkers =\n    slow: long\n")
    out = pytester.runpytest("--rethink", "--collect-only", "-q", "-m", "not slow").stdout.lines
    assert [line for line in out if "::rethink[" in line] == ["test_fast.py::rethink[true_labels]"]


def test_plots_without_matplotlib_say_how_to_install(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    pytester.makepyfile(test_model=module(FAST))
    result = pytester.runpytest("--rethink", "--rethink-plots=figs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "pip install 'rethink-checks[plots]'" in result.stderr.str()


def test_settings_precedence_config_over_cli_over_ini(pytester: pytest.Pytester) -> None:
    """package < data < ini < command line < marker < rethink_config (rethink_checks.layers)."""
    pytester.makepyfile(test_model=module(body=MODEL + '''
@pytest.fixture
def rethink_config():
    return {"train_size": 30, "batch_size": 10, "lr": 0.1, "device": "cpu",
            "fit_threshold": 0.1, "max_epochs": 2}
'''))
    pytester.makeini("[pytest]\nrethink_max_epochs = 3\nrethink_seed = 4\n")

    def fit_settings(*args: str) -> dict:
        pytester.runpytest("--rethink", "--rethink-checks=true_labels", "--rethink-json=o.json",
                           *args).assert_outcomes(passed=1)
        return entries(pytester.path / "o.json")["rethink[true_labels]"]["settings"]

    settings = fit_settings()
    assert settings["fit"]["max_epochs"] == 2 and settings["seed"] == 4  # config > ini
    settings = fit_settings("--rethink-max-epochs=1", "--rethink-seed=5")
    assert settings["fit"]["max_epochs"] == 2  # config > cli
    assert settings["seed"] == 5 and settings["fit"]["seed"] == 5  # cli > ini


def test_factories_modules_and_classes_all_work(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_forms=module(dict(FAST, fit_threshold=0.1), body='''
class Net(torch.nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = mlp(input_shape, num_classes, width=16)

    def forward(self, x):
        return self.body(x)


FORMS = {
    "module": lambda: mlp((1, 8, 8), 10, width=16),
    "classes_only": lambda: (lambda num_classes: mlp((1, 8, 8), num_classes, width=16)),
    "class": lambda: Net,
    "no_arguments": lambda: (lambda: mlp((1, 8, 8), 10, width=16)),
    "positional": lambda: (lambda shape, k: mlp(shape, k, width=16)),
    "positional_with_default": lambda: (lambda shape, k, width=16: mlp(shape, k, width=width)),
    "three_unknown": lambda: (lambda shape, k, width: mlp(shape, k, width=width)),
    "named_and_unknown": lambda: (lambda input_shape, k: mlp(input_shape, k, width=16)),
}


@pytest.fixture(params=sorted(FORMS))
def rethink_model(request):
    return FORMS[request.param]()
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "-rE")
    result.assert_outcomes(passed=6, errors=2)
    # a factory whose parameters the plugin cannot fill is told what it may take, before any fit
    result.stdout.fnmatch_lines([
        "*named_and_unknown*requires k, which the plugin cannot supply*",
        "*three_unknown*ModelError: the rethink_model factory*requires shape, k, width, which the "
        "plugin cannot supply*exactly two positional parameters (input_shape, num_classes)*"])


def test_rethink_data_fixture_and_config_check_selection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_datafixture=module(dict(FAST, fit_threshold=0.1), body=MODEL + '''
@pytest.fixture(params=["spec", "dataset"])
def rethink_data(request):
    from rethink_checks.data import load
    return "digits" if request.param == "spec" else load("digits").subset(50, seed=1)


@pytest.fixture
def rethink_config():
    return {"checks": ["true_labels"]}
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels,gaussian", "-rs")
    result.assert_outcomes(passed=2, failed=2)  # the CLI selection wins over the config's
    result = pytester.runpytest("--rethink", "-rs", "-k", "true_labels or gaussian")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*gaussian is not selected by rethink_config*"])


def test_header_and_live_progress(pytester: pytest.Pytester) -> None:
    torch = pytest.importorskip("torch")
    pytester.makepyfile(test_model=module(dict(FAST, fit_threshold=0.1, device="auto")))
    args = ("--rethink", "--rethink-checks=true_labels", "--rethink-progress-interval=0")
    result = pytester.runpytest(*args, "-v")
    result.stdout.fnmatch_lines(["rethink: device *, data digits, seed 0*",
                                 "*test_model true_labels: epoch 1/*, step *, loss *, acc *, "
                                 "train acc *, *s*"])
    assert "train acc None" not in result.stdout.str()
    if not torch.cuda.is_available():
        result.stdout.fnmatch_lines(["rethink: device cpu (no GPU: running on CPU)*"])
    quiet = pytester.runpytest(*args, "-q")
    assert "true_labels: epoch 1/" not in quiet.stdout.str()


def test_last_failed_and_exitfirst_work_on_rethink_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(dict(FAST, fit_threshold=0.1, memorize_threshold=1.0,
                                               max_epochs=1)))
    args = ("--rethink", "--rethink-checks=random_labels,true_labels,gaussian")
    pytester.runpytest(*args, "-x").assert_outcomes(failed=1)  # stops at random_labels
    pytester.runpytest(*args).assert_outcomes(passed=1, failed=2)
    rerun = pytester.runpytest(*args, "--lf", "-q")
    rerun.assert_outcomes(failed=2)  # true_labels passed last time: not run again


def test_threads_option_sets_and_restores_torch_threads(pytester: pytest.Pytester) -> None:
    before = torch.get_num_threads()
    pytester.makepyfile(test_model=module(dict(FAST, fit_threshold=0.1), body=MODEL + '''
def test_threads_inside():
    assert torch.get_num_threads() == 1
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "--rethink-threads=1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["rethink: threads 1"])
    assert torch.get_num_threads() == before


def test_threads_default_to_cores_per_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from rethink_checks_pytest.workers import cpu_threads

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert cpu_threads(None, None) is None  # no xdist: torch's own default
    assert cpu_threads(None, {"workercount": 3}) == 2
    assert cpu_threads(None, {"workercount": 16}) == 1
    assert cpu_threads(4, {"workercount": 16}) == 4


# ---------------------------------------------------------------- outputs

def test_plots_are_written(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_model=module(LENIENT))
    result = pytester.runpytest("--rethink", "--rethink-plots=figs",
                                "--rethink-checks=true_labels,random_labels,partial_labels")
    result.assert_outcomes(passed=3)
    names = sorted(p.name for p in (pytester.path / "figs").iterdir())
    assert names == ["test_model_figure1a_loss.png", "test_model_figure1b_relative_time.png",
                     "test_model_figure1c_test_error.png"]
    assert all((pytester.path / "figs" / n).stat().st_size > 1000 for n in names)


def test_baseline_save_compare_and_compare_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(dict(FAST, fit_threshold=1.0, max_epochs=3)))
    args = ["--rethink", "--rethink-checks=true_labels", "--rethink-storage=store"]
    pytester.runpytest(*args, "--rethink-save=base").assert_outcomes(failed=1)
    saved = list((pytester.path / "store").glob("*/0001_base.json"))
    assert len(saved) == 1
    rule = "--rethink-compare-fail=true_labels.train_accuracy:5%"

    same = pytester.runpytest(*args, "--rethink-compare=base", rule)  # CPU runs are identical
    same.stdout.fnmatch_lines(["rethink compare: against *0001_base.json",
                               "*rethink?true_labels?*train_accuracy*+0 (+0.0%)*"])
    assert "compare-fail:" not in same.stdout.str()

    # the marker's settings win over the command line's (rethink_checks.layers): change the module
    pytester.makepyfile(test_model=module(dict(FAST, fit_threshold=0.1, max_epochs=1)))
    worse = pytester.runpytest(*args, "--rethink-compare", rule)
    worse.assert_outcomes(passed=1)
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(["rethink compare-fail: *true_labels.train_accuracy went from *"])


def test_xdist_two_workers_report_to_the_controller(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_a=module(dict(FAST, fit_threshold=0.1)),
                        test_b=module(dict(FAST, fit_threshold=0.1)))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--rethink", "--rethink-checks=true_labels,gaussian", "--rethink-json=x.json",
        "--rethink-memorize-threshold=0.1", "--junitxml=j.xml")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*rethink summary*", "test_a*gaussian*PASS*"])
    items = json.loads((pytester.path / "x.json").read_text())["items"]
    assert len(items) == 4 and all(i["metrics"]["epochs"] >= 1 for i in items)
    assert {i["worker"] for i in items} <= {"gw0", "gw1"} and None not in {i["worker"] for i in items}
    props = [p.get("name") for p in ET.parse(pytester.path / "j.xml").getroot().iter("property")]
    assert "rethink.gaussian.train_accuracy" in props


def test_xdist_loadscope_keeps_each_models_items_on_one_worker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    lenient = dict(FAST, fit_threshold=0.1, memorize_threshold=0.1, max_slowdown=100.0)
    pytester.makepyfile(test_a=module(lenient), test_b=module(lenient))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadscope", "--rethink", "--rethink-json=x.json",
        "--rethink-checks=true_labels,random_labels,gaussian,slowdown")
    result.assert_outcomes(passed=8)
    items = json.loads((pytester.path / "x.json").read_text())["items"]
    assert sorted(i["nodeid"] for i in items) == sorted(
        f"test_{m}.py::rethink[{c}]" for m in "ab"
        for c in ("true_labels", "random_labels", "gaussian", "slowdown"))
    for model in ("test_a", "test_b"):  # slowdown ran where its model's fits are cached
        assert len({i["worker"] for i in items if i["model"] == model}) == 1


def test_xdist_loadgroup_keeps_each_parametrized_model_on_one_worker(pytester: pytest.Pytester) -> None:
    """--dist loadgroup: the plugin's scheduler makes each model (fixture parameter) one scope."""
    pytest.importorskip("xdist")
    lenient = dict(FAST, fit_threshold=0.1, memorize_threshold=0.1, max_slowdown=100.0)
    pytester.makepyfile(test_p=module(lenient, body='''
@pytest.fixture(params=[16, 32, 64])
def rethink_model(request):
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=request.param)
'''))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadgroup", "--rethink", "--rethink-json=x.json",
        "--rethink-checks=true_labels,random_labels,slowdown")
    result.assert_outcomes(passed=9)
    items = json.loads((pytester.path / "x.json").read_text())["items"]
    models = {i["model"] for i in items}
    assert models == {"test_p[16]", "test_p[32]", "test_p[64]"}
    for model in models:  # slowdown ran where its model's fits are cached
        assert len({i["worker"] for i in items if i["model"] == model}) == 1, model
    assert {i["worker"] for i in items} == {"gw0", "gw1"}  # and the models spread over both


@pytest.mark.parametrize("nodeid, group", [
    ("t.py::rethink[random_labels-mlp1x512]", "rethink:t.py[mlp1x512]"),
    ("t.py::rethink[slowdown-mlp1x512]", "rethink:t.py[mlp1x512]"),
    ("d/t.py::rethink[true_labels]", "rethink:d/t.py"),
    ("t.py::rethink[slowdown-16-a-b]", "rethink:t.py[16-a-b]"),
    ("t.py::test_plain[slowdown]", None),
    ("t.py::rethink[bogus-16]", None),
    ("t.py::rethink[true_labels]@rethink:t.py", None),  # a working xdist_group suffix: xdist's rule
])
def test_model_group_of_a_node_id(nodeid: str, group: str | None) -> None:
    pytest.importorskip("xdist")
    from rethink_checks.checks.registry import names
    from rethink_checks_pytest.scheduling import model_group

    assert model_group(nodeid, names()) == group


# ---------------------------------------------------------------- bad input and faults

def test_no_rethink_model_anywhere(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def helper():\n    pass\n")
    result = pytester.runpytest("--rethink")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["rethink: no test module defines a rethink_model fixture*"])


def test_broken_models_error_and_others_still_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad=module(dict(FAST, fit_threshold=0.1), body='''
def broken_factory(input_shape, num_classes):
    raise ValueError(f"no layout for {input_shape}")


@pytest.fixture(params=["raises", "wrong_type", "wrong_shape", "factory_raises"])
def rethink_model(request):
    if request.param == "raises":
        raise RuntimeError("cannot build the model")
    if request.param == "wrong_type":
        return 42
    if request.param == "factory_raises":
        return broken_factory
    return lambda input_shape: mlp(input_shape, 7, width=8)
'''), test_good=module(dict(FAST, fit_threshold=0.1)),
       test_bad_data=module(FAST, body=MODEL + '''
@pytest.fixture
def rethink_data():
    return 42
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels",
                                "--rethink-json=out.json")
    result.assert_outcomes(passed=1, errors=5)
    out = result.stdout.str()
    assert "RuntimeError: cannot build the model" in out
    assert "returned builtins.int; expected a torch.nn.Module or a factory" in out
    assert "model returned shape (" in out and ", 7); expected (" in out
    assert "DataError: the rethink_data fixture returned 42; expected a" in out
    assert ("ModelError: the rethink_model factory raised ValueError: no layout for (1, 8, 8) "
            "(at ") in out and "given input_shape=(1, 8, 8), num_classes=10)" in out
    assert "torch/nn/modules" not in out  # the engine's message, not a torch traceback
    doc = json.loads((pytester.path / "out.json").read_text())
    items = {item["nodeid"]: item for item in doc["items"]}
    assert {k: v["outcome"] for k, v in items.items()} == {
        "test_good.py::rethink[true_labels]": "passed",
        "test_bad_data.py::rethink[true_labels]": "error",
        "test_bad.py::rethink[true_labels-raises]": "error",
        "test_bad.py::rethink[true_labels-wrong_type]": "error",
        "test_bad.py::rethink[true_labels-wrong_shape]": "error",
        "test_bad.py::rethink[true_labels-factory_raises]": "error"}
    assert "ModelError" in items["test_bad.py::rethink[true_labels-wrong_shape]"]["message"]
    assert all(i["message"] for i in items.values() if i["outcome"] == "error")
    assert "raised ModelError" not in out  # the factory's error is said once, not wrapped again
    result.stdout.fnmatch_lines([  # the summary: one readable row per model, errors say why
        "test_bad?factory_raises?  true_labels  ERROR * ModelError: the rethink_model factory *...*",
        "test_bad?raises?  * true_labels  ERROR * RuntimeError: cannot build the model *",
        "test_bad?wrong_type?  * true_labels  ERROR * ModelError: the rethink_model fixture*...*",
        "test_good  * true_labels  PASS*"])


@pytest.mark.parametrize("args, shown", [
    (["--rethink-device=gpu"], "--rethink-device: invalid value 'gpu'; allowed: auto, cpu, cuda"),
    (["--rethink-checks=true_labels,nope"], "unknown check(s) 'nope'; allowed: true_labels"),
    (["--rethink-max-epochs=0"], "--rethink-max-epochs: invalid value '0'; allowed: an integer >= 1"),
    (["--rethink-fit-threshold=2"], "allowed: a number in (0.0, 1.0]"),
    (["--rethink-data=imagenet"], "unknown source 'imagenet'; allowed: digits, cifar10, mnist, folder"),
    (["--rethink-compare-fail=epochs"], "expected CHECK.METRIC:LIMIT"),
    (["--rethink-partial-levels=0,0.5,0.5"],
     "CheckSettings.partial_levels=(0.0, 0.5, 0.5) is invalid; allowed: distinct levels"),
])
def test_invalid_option_values_are_usage_errors(pytester: pytest.Pytester, args, shown) -> None:
    pytester.makepyfile(test_model=module(FAST))
    result = pytester.runpytest("--rethink", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert shown in result.stderr.str()


def test_invalid_ini_value_and_marker_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(dict(FAST, checks=["bogus"])))
    result = pytester.runpytest("--rethink", "--collect-only")
    result.stdout.fnmatch_lines(["*pytest.mark.rethink: checks=?'bogus'? is invalid: unknown check(s) 'bogus'; allowed: *"])
    pytester.makeini("[pytest]\nrethink_seed = -1\n")
    result = pytester.runpytest("--rethink")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option rethink_seed: invalid value '-1'" in result.stderr.str()


@pytest.mark.parametrize("config, shown", [
    ({"learning_rate": 0.1}, "SettingsError: rethink_config: unknown settings key(s) ['learning_rate']"),
    ({"checks": ["random_lables"]}, "SettingsError: rethink_config: checks=['random_lables'] is invalid: "
                                    "unknown check(s) 'random_lables'; allowed: true_labels, random_labels"),
    ({"batch_size": 0}, "batch_size"),
    (["lr", 0.1], "SettingsError: the rethink_config fixture returned list; expected a dict"),
])
def test_invalid_rethink_config_errors_the_items(pytester: pytest.Pytester, config, shown) -> None:
    pytester.makepyfile(test_model=module(FAST, body=MODEL + f'''
@pytest.fixture
def rethink_config():
    return {config!r}
'''))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels")
    result.assert_outcomes(errors=1)
    assert shown in result.stdout.str()


def test_time_budget_is_shared_by_the_fits_of_a_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(dict(FAST, max_epochs=50, fit_threshold=1.0)))
    result = pytester.runpytest("--rethink", "--rethink-checks=slowdown", "--rethink-json=o.json",
                                "--rethink-time-budget=0.001", "--rethink-slowdown-randomizations=all")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["rethink: time budget 0.001 s per check",
                                 "*true labels not fitted*(stopped: time_budget)*"
                                 "(the check's time budget of 0.001 s ran out; stopped for time: "
                                 "gaussian, random_labels, random_pixels, shuffled_pixels, "
                                 "true_labels)"])
    entry = entries(pytester.path / "o.json")["rethink[slowdown]"]
    assert entry["metrics"]["time_budget_exhausted"] is True
    assert entry["settings"]["time_budget"] == 0.001 and entry["settings"]["fit"]["max_seconds"] is None
    assert [len(c["epoch"]) for c in entry["curves"].values()] == [1] * 5  # one epoch each


def test_a_plain_mlp_with_no_config_passes_on_the_default_data(pytester: pytest.Pytester) -> None:
    """The digits' fit_defaults (batch 32, 300 epochs) are what make it pass."""
    plain = ("import pytest\nfrom rethink_checks.models import mlp\n\n"
             "@pytest.fixture\ndef rethink_model():\n"
             "    return lambda input_shape, num_classes: mlp(input_shape, num_classes)\n")
    paper_schedule = plain + ('\n@pytest.fixture\ndef rethink_config():\n'
                              '    return {"batch_size": 128, "lr_decay": 0.95, "max_epochs": 100}\n')
    pytester.makepyfile(test_plain=plain, test_paper_schedule=paper_schedule)
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels,random_labels",
                                "--rethink-device=cpu", "--rethink-json=o.json")
    result.assert_outcomes(passed=2, failed=2)
    items = entries(pytester.path / "o.json")
    doc = json.loads((pytester.path / "o.json").read_text())
    plain_items = [i for i in doc["items"] if i["model"] == "test_plain"]
    assert [i["outcome"] for i in plain_items] == ["passed", "passed"]
    fit = plain_items[1]["settings"]["fit"]
    assert (fit["batch_size"], fit["lr_decay"], fit["max_epochs"]) == (32, 0.95, 300)
    assert plain_items[1]["metrics"]["train_accuracy"] >= 0.99
    assert plain_items[1]["metrics"]["test_accuracy"] < 0.2  # random labels: about chance
    # batch 128 gives the digits 12 steps an epoch: too few steps in 100 epochs (docs/data.md)
    schedule = [i for i in doc["items"] if i["model"] == "test_paper_schedule"]
    assert [i["outcome"] for i in schedule] == ["failed", "failed"]
    assert schedule[1]["settings"]["fit"]["batch_size"] == 128  # the user's keys win
    assert len(items) == 2  # (entries() keys by the part after '::': both modules share them)


# ---------------------------------------------------------------- xdist helpers (no workers)

def test_workers_apply_the_gpu_the_controller_chose() -> None:
    from rethink_checks_pytest.workers import pin_worker_gpu

    env: dict[str, str] = {}  # the choice itself (local rank per host): tests/test_plugin_hosts.py
    assert pin_worker_gpu({"workerid": "gw3", "rethink_gpu": "5"}, env) == "5"
    assert env == {"CUDA_VISIBLE_DEVICES": "5"}
    assert pin_worker_gpu({"workerid": "gw0", "rethink_gpu": None}, env) is None
    assert env == {"CUDA_VISIBLE_DEVICES": "5"}


def test_auto_workers_means_one_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from rethink_checks_pytest.plugin import pytest_xdist_auto_num_workers

    config = SimpleNamespace(getoption=lambda name: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2,3")
    assert pytest_xdist_auto_num_workers(config) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pytest_xdist_auto_num_workers(config) is None  # no GPU: xdist decides
