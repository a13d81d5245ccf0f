"""One data-spec grammar: every entry point accepts or refuses a spec string as parse_spec does.

Entry points: the library (``parse_spec`` / ``data.load``), the plugin's ``--rethink-data`` and ini
``rethink_data``, the plugin's ``rethink_data`` fixture, and the reproduction command's option
parsing. A refusal carries parse_spec's own message everywhere.
"""
from __future__ import annotations

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here: pytester's in-process runs unload
import torch  # noqa: F401 - modules they import, and extension modules must not load twice
from hypothesis import given, strategies as st

import rethink_checks.training  # noqa: F401
from rethink_checks import data as data_mod
from rethink_checks.errors import DataError
from rethink_checks.reproduce.cli import parse_options
from rethink_checks.specs import PREPROCESSING_OPTIONS, SPEC_OPTIONS, DataSpec, parse_spec

#: spec -> accepted?  Accepted specs with a root name a folder that does not exist: the grammar
#: is checked, not the data.
SPECS = {
    "DIGITS": True, "digits,raw": True, " Digits , RAW ": True, "cifar10:/x,paper": True,
    "folder:/x": True, "MNIST:/x,download": True, "mnist:": False, "bogus:x": False,
    "digits:/x": False, "cifar10": False, "mnist:/x,paper": False, "digits,whiten": False, "": False,
    "folder:/x,raw": True, "cifar10:/x,paper,raw": False,
}

MODEL = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(train_size=40, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=1,
                                 fit_threshold=0.01, device="cpu")


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=32)
'''


def library_message(spec: str) -> str | None:
    """parse_spec's refusal message for ``spec``, or None when it accepts it."""
    try:
        parse_spec(spec)
    except DataError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("spec, accepted", SPECS.items(), ids=[repr(s) for s in SPECS])
def test_every_entry_point_agrees_with_parse_spec(pytester: pytest.Pytester, capsys, spec: str,
                                                  accepted: bool) -> None:
    message = library_message(spec)
    assert (message is None) == accepted

    # the plugin's --rethink-data (validated at configure time, before anything runs)
    pytester.makepyfile(test_model=MODEL)
    result = pytester.runpytest("--rethink", f"--rethink-data={spec}", "--collect-only", "-q")
    if accepted:
        assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"--rethink-data: invalid value {spec!r}: {message}" in result.stderr.str()

    # the plugin's rethink_data fixture: a refused spec errors before any data is loaded
    pytester.makepyfile(test_model=MODEL + f'''

@pytest.fixture
def rethink_data():
    return {spec!r}
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels")
    out = result.stdout.str()
    refusal = f"the rethink_data fixture returned {spec!r}: {message}"
    if accepted:
        assert "the rethink_data fixture returned" not in out
        if spec.strip().lower().startswith("digits"):
            result.assert_outcomes(passed=1)
        else:  # the grammar passed; the folder /x does not exist
            result.assert_outcomes(errors=1)
            assert "/x" in out
    else:
        result.assert_outcomes(errors=1)
        assert refusal in out

    # the reproduction command's option parsing
    argv = ["--data", spec, "--out", str(pytester.path / "o")]
    if accepted:
        assert parse_options(argv).data == spec
    else:
        with pytest.raises(SystemExit) as exc:
            parse_options(argv)
        assert exc.value.code == 2
        assert f"argument --data: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("spec", [s for s, ok in SPECS.items() if not ok])
def test_ini_rethink_data_refuses_with_parse_specs_message(pytester: pytest.Pytester,
                                                           spec: str) -> None:
    pytester.makeini(f"[pytest]\nrethink_data = {spec}\n")
    pytester.makepyfile(test_model=MODEL)
    result = pytester.runpytest("--rethink", "--collect-only", "-q")
    if not spec.strip():  # an empty ini value means "not set"
        assert result.ret == pytest.ExitCode.OK
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ini option rethink_data: invalid value {spec.strip()!r}: " in result.stderr.str()


def test_load_refuses_exactly_what_parse_spec_refuses() -> None:
    for spec, accepted in SPECS.items():
        if accepted:
            continue
        with pytest.raises(DataError) as info:
            data_mod.load(spec)
        assert str(info.value) == library_message(spec)
    assert data_mod.load("DIGITS").name == "digits"
    assert data_mod.parse_spec is parse_spec and data_mod.DataSpec is DataSpec


def test_parse_spec_fields_and_canonical_form() -> None:
    assert parse_spec(" CIFAR10:/data/c10 , Paper,download") == DataSpec(
        "cifar10", "/data/c10", frozenset({"paper", "download"}))
    assert str(parse_spec("cifar10:/d,paper,download")) == "cifar10:/d,download,paper"
    assert parse_spec("digits,raw") == DataSpec("digits", "", frozenset({"raw"}))
    with pytest.raises(DataError, match=r"options 'paper' and 'raw' exclude each other; choose one preprocessing"):
        parse_spec("folder:/d,raw,paper")
    # a comma inside a root is kept when what follows it is no option word
    assert parse_spec("folder:/a,b/c").root == "/a,b/c"
    with pytest.raises(DataError, match=r"spec='bogus:x': unknown source 'bogus'; allowed: digits, "
                                        r"cifar10, mnist, folder"):
        parse_spec("bogus:x")


@given(kind=st.sampled_from(sorted(SPEC_OPTIONS)), data=st.data(),
       root=st.from_regex(r"/[a-z0-9_./-]{0,12}", fullmatch=True))
def test_canonical_form_parses_back_to_the_same_spec(kind: str, data, root: str) -> None:
    options = data.draw(st.sets(st.sampled_from(SPEC_OPTIONS[kind])).filter(
        lambda chosen: len(chosen & set(PREPROCESSING_OPTIONS)) <= 1))
    spec = DataSpec(kind, "" if kind == "digits" else root, frozenset(options))
    text = str(spec)
    assert parse_spec(text) == spec
    assert parse_spec(text.upper() if kind == "digits" else text) == spec


def test_spec_validation_imports_no_torch() -> None:
    """The plugin validates --rethink-data before anything heavy is loaded: no torch."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from rethink_checks_pytest.options import OPTIONS_BY_NAME\n"
            "assert OPTIONS_BY_NAME['data'].parse('DIGITS') == 'DIGITS'\n"
            "from rethink_checks.specs import parse_spec\n"
            "parse_spec('cifar10:/x,paper')\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
