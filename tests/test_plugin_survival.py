"""Results that survive any stop: SIGTERM, Ctrl-C, crashed xdist workers, other plugins' errors.

Subprocess runs (a real signal, a real worker that dies) on an MLP of width 8 on 40 digits,
one or two epochs: these tests check that the JSON keeps what finished, not the checks.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import sklearn.datasets  # noqa: F401 - loaded once: pytester's in-process runs unload the
import torch  # noqa: F401 - modules they import, and extension modules must not load twice

import rethink_checks.capacity  # noqa: F401
import rethink_checks.theory  # noqa: F401
import rethink_checks.training  # noqa: F401
from rethink_checks_pytest import survival

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TINY = dict(train_size=40, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=2, device="cpu",
            fit_threshold=0.1, memorize_threshold=0.1)


def module(body: str, settings: dict = TINY, extra_marks: str = "") -> str:
    marks = f"pytest.mark.rethink(**{settings!r})" + extra_marks
    return ("import os, time\nimport pytest\nimport torch\nfrom rethink_checks.models import mlp\n"
            f"pytestmark = [{marks}]\n" + body)


MLP = '''
@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=8)
'''

CRASHES = '''
class Dies(torch.nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = torch.nn.Linear(64, num_classes)
    def forward(self, x):
        os._exit(3)  # the worker process dies under the item

@pytest.fixture
def rethink_model():
    return Dies
'''

SLOW = '''
class Slow(torch.nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = torch.nn.Linear(64, num_classes)
    def forward(self, x):
        time.sleep(0.2)
        return self.lin(x.flatten(1))

@pytest.fixture
def rethink_model():
    return Slow
'''


def load(path) -> dict:
    return json.loads(path.read_text())


# ---------------------------------------------------------------- every outcome, crashes included

def test_every_outcome_and_a_crashed_worker_are_in_the_json(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_good=module(MLP),
        test_strict=module(MLP, dict(TINY, max_epochs=1, fit_threshold=1.0)),
        test_broken=module("@pytest.fixture\ndef rethink_model():\n    return 42\n"),
        test_skipped=module(MLP, extra_marks=", pytest.mark.skip(reason='not today')"),
        test_z_dies=module(CRASHES))  # collected last: one worker, no replacement needed
    result = pytester.runpytest_subprocess("-n", "1", "--max-worker-restart=0", "--rethink",
                                           "--rethink-checks=true_labels", "--rethink-json=x.json",
                                           "--junitxml=j.xml")
    result.assert_outcomes(passed=1, failed=2, errors=1, skipped=1)
    result.stdout.fnmatch_lines(["*test_z_dies*true_labels*CRASHED*"])
    doc = load(pytester.path / "x.json")
    outcomes = {i["model"]: i["outcome"] for i in doc["items"]}
    assert outcomes == {"test_good": "passed", "test_strict": "failed", "test_broken": "error",
                        "test_skipped": "skipped", "test_z_dies": "crashed"}
    crashed = next(i for i in doc["items"] if i["outcome"] == "crashed")
    assert crashed["nodeid"] == "test_z_dies.py::rethink[true_labels]"
    assert "crashed while running 'test_z_dies.py::rethink[true_labels]'" in crashed["message"]
    assert crashed["worker"] == "gw0" and crashed["machine"]["host"]
    assert doc["status"] == "finished" and doc["interrupted"] is None
    cases = list(ET.parse(pytester.path / "j.xml").getroot().iter("testcase"))
    assert len(cases) == 5


# ---------------------------------------------------------------- SIGTERM, Ctrl-C, killed

def test_sigterm_mid_run_leaves_the_finished_items_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a_fast=module(MLP), test_b_slow=module(SLOW, dict(TINY, max_epochs=50)))
    out = pytester.path / "x.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rethink",
         "--rethink-checks=true_labels", "--rethink-json=x.json", "--junitxml=j.xml"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                seen = load(out)
                if seen["items"]:
                    break
            time.sleep(0.1)
        assert seen and seen["items"], "no item finished in time"
        assert seen["status"] == "running" and seen["interrupted"]["by"] == "unfinished"
        time.sleep(0.5)  # into the slow model's fit
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, stdout
    doc = load(out)
    assert [i["nodeid"] for i in doc["items"]] == ["test_a_fast.py::rethink[true_labels]"]
    assert doc["status"] == "interrupted" and doc["plugin"]["interrupted"] is True
    assert doc["interrupted"]["by"] == "SIGTERM"
    assert doc["interrupted"]["not_run"] == ["test_b_slow.py::rethink[true_labels]"]
    assert "received SIGTERM" in stdout
    assert "rethink: session interrupted (SIGTERM): 1 item(s) kept, 1 not run" in stdout
    names = [c.get("name") for c in ET.parse(pytester.path / "j.xml").getroot().iter("testcase")]
    assert "rethink[true_labels]" in names


def test_keyboard_interrupt_keeps_what_finished_and_records_what_did_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module('''
calls = []

def factory(input_shape, num_classes):
    calls.append(1)
    if len(calls) > 1:
        raise KeyboardInterrupt
    return mlp(input_shape, num_classes, width=8)

@pytest.fixture
def rethink_model():
    return factory
'''))
    reprec = pytester.inline_run("--rethink", "--rethink-checks=true_labels,gaussian",
                                 "--rethink-json=out.json", "--rethink-save=b",
                                 no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    doc = load(pytester.path / "out.json")
    assert [i["check"] for i in doc["items"]] == ["true_labels"]
    assert doc["interrupted"]["by"] == "KeyboardInterrupt"
    assert doc["interrupted"]["not_run"] == ["test_model.py::rethink[gaussian]"]
    assert doc["plugin"]["interrupted"] is True
    assert not (pytester.path / ".rethink").exists()  # no baseline from half a session


def test_an_exception_in_another_plugin_keeps_the_file(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
seen = []

def pytest_runtest_logreport(report):
    if report.when == "call":
        seen.append(report.nodeid)
        if len(seen) == 2:
            raise RuntimeError("a reporting plugin broke")
''')
    pytester.makepyfile(test_model=module(MLP))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels,gaussian,random_labels",
                                "--rethink-json=out.json")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    doc = load(pytester.path / "out.json")
    assert [i["check"] for i in doc["items"]] == ["true_labels", "gaussian"]
    assert doc["interrupted"]["by"] == "internal error"
    assert "a reporting plugin broke" in doc["interrupted"]["message"]
    assert doc["interrupted"]["not_run"] == ["test_model.py::rethink[random_labels]"]


def test_exitfirst_says_the_session_stopped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(MLP, dict(TINY, max_epochs=1, fit_threshold=1.0)))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels,gaussian", "-x",
                                "--rethink-json=out.json")
    result.assert_outcomes(failed=1)
    doc = load(pytester.path / "out.json")
    assert doc["interrupted"]["by"] == "stopped"
    assert doc["interrupted"]["not_run"] == ["test_model.py::rethink[gaussian]"]


def test_a_stale_file_is_replaced_when_the_session_starts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=module(MLP))
    (pytester.path / "out.json").write_text('{"items": ["from last week"]}')
    pytester.makeconftest('''
import json, pathlib

def pytest_collection_finish(session):
    doc = json.loads(pathlib.Path("out.json").read_text())
    assert doc["items"] == [] and doc["status"] == "running", doc
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "--rethink-json=out.json")
    result.assert_outcomes(passed=1)
    assert load(pytester.path / "out.json")["status"] == "finished"


# ---------------------------------------------------------------- the pieces

def test_signal_guard_installs_and_restores_the_handlers() -> None:
    before_term = signal.getsignal(signal.SIGTERM)
    before_int = signal.getsignal(signal.SIGINT)
    guard = survival.SignalGuard()
    assert guard.install()
    assert signal.getsignal(signal.SIGTERM) == guard._handle
    with pytest.raises(survival.SessionTerminated) as info:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert info.value.signame == "SIGTERM" and isinstance(info.value, KeyboardInterrupt)
    guard.quiet = True
    os.kill(os.getpid(), signal.SIGTERM)  # while the final document is written: noted only
    assert guard.received == ["SIGTERM", "SIGTERM"]
    guard.restore()
    assert signal.getsignal(signal.SIGTERM) == before_term
    assert signal.getsignal(signal.SIGINT) == before_int


def test_signal_guard_leaves_someone_elses_sigint_alone() -> None:
    def mine(signum, frame):  # pragma: no cover - never called
        pass

    before = signal.signal(signal.SIGINT, mine)
    try:
        guard = survival.SignalGuard()
        guard.install()
        assert signal.getsignal(signal.SIGINT) is mine
        guard.restore()
    finally:
        signal.signal(signal.SIGINT, before)


def test_crash_entry_parses_the_node_id() -> None:
    from rethink_checks.report import item_entry

    known = ["true_labels", "random_labels", "partial_labels"]
    entry = survival.crash_entry("sub/test_net.py::rethink[random_labels-wide]", known,
                                 "worker 'gw3' crashed", item_entry)
    assert (entry["model"], entry["check"], entry["outcome"]) == \
        ("test_net[wide]", "random_labels", "crashed")
    assert entry["model_key"] == "sub/test_net.py[wide]" and entry["metrics"] == {}
    assert entry["message"] == "worker 'gw3' crashed"
