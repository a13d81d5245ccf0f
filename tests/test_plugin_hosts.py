"""Several machines through pytest-xdist gateways: popen gateways with their own environment
stand in for hosts. Checks the pinning rule (local rank among the workers sharing a host and
GPU pool), the merged JSON with each item's machine, and a gateway lacking the plugin.
"""
from __future__ import annotations

import json
import venv

import pytest

from rethink_checks_pytest import hosts

TINY = dict(train_size=40, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=1, device="cpu",
            fit_threshold=0.01, memorize_threshold=0.01)

MODULE = f'''
import pytest
from rethink_checks.models import mlp
pytestmark = pytest.mark.rethink(**{TINY!r})

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=8)
'''

# Records, at conftest import (before any test or CUDA), what each worker was pinned to.
CONFTEST = '''
import json, os, pathlib
worker = os.environ.get("PYTEST_XDIST_WORKER")
if worker:
    pathlib.Path(f"pinned-{worker}.json").write_text(
        json.dumps(os.environ.get("CUDA_VISIBLE_DEVICES")))
'''


# ---------------------------------------------------------------- the rule

def test_local_rank_counts_per_host_and_pool_and_reuses_freed_ranks() -> None:
    pools = hosts.HostPools()
    assert pools.assign("gw0", "a", ["9"]) == (0, "9")
    assert pools.assign("gw1", "a", ["4", "6"]) == (0, "4")  # own pool: rank 0, not gw index 1
    assert pools.assign("gw2", "a", ["4", "6"]) == (1, "6")
    assert pools.assign("gw3", "b", ["4", "6"]) == (0, "4")  # another host: its own ranks
    assert pools.assign("gw4", "a", ["4", "6"]) == (2, "4")  # more workers than GPUs: wrap
    pools.release("gw1")  # crashed; its replacement takes the freed rank and GPU
    assert pools.assign("gw5", "a", ["4", "6"]) == (0, "4")
    assert pools.assign("gw6", "c", []) == (0, None)  # no GPU: no pinning
    pools.release("never-seen")  # harmless


def test_devices_parse_like_cuda_does() -> None:
    assert hosts.parse_devices("0, 2,3") == ["0", "2", "3"]
    assert hosts.parse_devices("") == [] and hosts.parse_devices("-1") == []
    assert hosts.parse_devices(None) == []


# ---------------------------------------------------------------- gateways standing in for hosts

def test_popen_gateways_pin_by_local_rank_and_merge_into_one_json(pytester: pytest.Pytester) -> None:
    """Two gateways with their own GPU lists stand in for two hosts (two workers: the box is
    small; more workers per pool are covered above, ``-n 2`` = ``--tx 2*popen`` in test_plugin)."""
    pytest.importorskip("xdist")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a=MODULE, test_b=MODULE)
    result = pytester.runpytest_subprocess(
        "--dist", "load", "--tx", "popen//env:CUDA_VISIBLE_DEVICES=9",
        "--tx", "popen//env:CUDA_VISIBLE_DEVICES=4,6",
        "--rethink", "--rethink-checks=true_labels,gaussian",
        "--rethink-json=x.json", timeout=300)
    result.assert_outcomes(passed=4)
    pinned = {p.stem.split("-", 1)[1]: json.loads(p.read_text())
              for p in pytester.path.glob("pinned-gw*.json")}
    assert pinned == {"gw0": "9", "gw1": "4"}  # local rank 0 of its pool; gw index 1 gives "6"
    doc = json.loads((pytester.path / "x.json").read_text())
    assert sorted(i["nodeid"] for i in doc["items"]) == sorted(
        f"test_{m}.py::rethink[{c}]" for m in "ab" for c in ("true_labels", "gaussian"))
    ranks = {"gw0": 0, "gw1": 0}
    for item in doc["items"]:
        place = item["machine"]
        assert place["worker"] == item["worker"]
        assert place["cuda_visible_devices"] == pinned[item["worker"]]
        assert place["local_rank"] == ranks[item["worker"]]
        assert place["machine_id"] == doc["machine_id"]  # one real host here
    assert set(doc["machines"]) == {i["machine"]["host"] for i in doc["items"]}
    assert doc["status"] == "finished" and doc["interrupted"] is None


def test_a_gateway_that_cannot_import_the_plugin_is_a_clear_usage_error(
        pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    bare = pytester.path / "bare"
    venv.create(bare, with_pip=False)  # a Python with none of our packages
    python = bare / "bin" / "python"
    if not python.exists():  # pragma: no cover - Windows layout
        pytest.skip("no POSIX venv layout")
    pytester.makepyfile(test_a=MODULE)
    result = pytester.runpytest_subprocess("--dist", "load", "--tx", f"popen//python={python}", "--rethink",
                                           timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str() + result.stdout.str()
    assert "INTERNALERROR" not in text
    assert f"gateway popen//python={python}" in text.replace("execmodel=main_thread_only//", "")
    assert "cannot import pytest, xdist, rethink_checks_pytest, rethink_checks, torch" in text
    assert f"{python} -m pip install pytest pytest-xdist rethink-checks torch" in text
