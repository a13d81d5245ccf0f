"""The HTML report: every section, every run-derived string escaped, one self-contained file
that a real browser renders (Playwright driving Debian's chromium; skipped without them),
rewritten after every item so an interrupted run leaves a readable page."""
from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sklearn.datasets  # noqa: F401 - loaded once: pytester's in-process runs unload the
import torch  # noqa: F401 - modules they import, and extension modules must not load twice

import rethink_checks.training  # noqa: F401
from rethink_checks.report import html_page, session_document, write_html
from rethink_checks.report.svg import line_chart

EVIL = "<script>alert(1)</script></table><img src=x onerror=alert(2)>"
CHROMIUM = "/usr/bin/chromium"
CURVES = {"epoch": [1, 2, 3], "step": [10, 20, 30], "train_loss": [2.3, 1.1, float("nan")],
          "running_accuracy": [0.1, 0.5, 0.9], "train_accuracy": [None, 0.6, 1.0]}


def entry(check: str, model: str = "cnn", **extra) -> dict:
    base = {"nodeid": f"t.py::rethink[{check}]", "model": model, "check": check,
            "outcome": "passed", "criterion": f"{check} criterion", "message": "ok",
            "seconds": 1.5, "metrics": {"train_accuracy": 1.0}, "tables": {},
            "curves": {check: CURVES}, "summary": {"train": 1.0, "test": 0.9, "epochs": 3},
            "settings": {"lr": 0.01, "seed": 0}}
    return {**base, **extra}


def every_section_doc() -> dict:
    items = [
        entry("true_labels", tables={"suspects": [{"index": 7, "label": 3, "prediction": 5,
                                                   "fit_epoch": None, "forgets": 2}]},
              metrics={"train_accuracy": 1.0, "train_accuracy.ci_low": 0.98,
                       "train_accuracy.ci_high": 1.0, "train_accuracy.std": 0.01}),
        entry("random_labels"),
        entry("slowdown", curves={}, tables={"slowdown": [
            {"randomization": "random_labels", "fitted": True, "epochs_to_fit": 9,
             "steps_to_fit": 90, "slowdown": 3.0}]}),
        entry("partial_labels", curves={"p=0": CURVES, "p=1": CURVES}, tables={"sweep": [
            {"p": 0.0, "relative_time": 1.0, "test_error": 0.1},
            {"p": 1.0, "relative_time": 3.0, "test_error": 0.9}]}),
        entry("memorization", metrics={"auc": 0.93, "median_fit_epoch_clean": 2}),
        entry("gaussian", model=EVIL, outcome="error", message=f"ModelError: {EVIL}",
              settings={"note": EVIL}),
    ]
    return session_document(items, {"seed": 0}, data="digits",
                            machine={"torch": "2.x", "cpu": "test cpu", "gpu": None},
                            extra={"status": "finished"})


class Elements(HTMLParser):
    """Tags and text of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[dict] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def test_run_strings_are_text_never_markup() -> None:
    page = html_page(every_section_doc())
    seen = parse(page)
    assert "script" not in seen.tags  # the model id and the message are not markup
    assert not any(k.startswith("on") for attrs in seen.attrs for k in attrs)
    text = "".join(seen.text)
    assert EVIL in text and f"ModelError: {EVIL}" in text  # ... but shown, as written
    assert seen.tags.count("table") == page.count("</table>")  # no table closed by a run's string


def test_every_section_is_there_and_nothing_is_fetched() -> None:
    page = html_page(every_section_doc())
    for anchor in ("verdicts", "figure1a", "slowdown", "figure1bc", "memorization", "items",
                   "environment"):
        assert f'id="{anchor}"' in page
    seen = parse(page)
    sources = [a.get("src", "") for a in seen.attrs if "src" in a]
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<link" not in page
    text = "".join(seen.text)
    assert "1 [0.98, 1] 95% over seeds, std 0.01" in text  # a seed interval
    assert "true_labels criterion" in text and "test cpu" in text
    assert "#7: label 3, predicted 5" in text  # the suspects grid


def test_a_chart_escapes_its_labels_and_survives_no_data() -> None:
    svg = line_chart({"<b>x</b>": [(0, 1.0), (1, float("inf")), (2, 0.5)]}, title="a&b",
                     x_label="steps", y_label="loss", log_y=True)
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "a&amp;b" in svg
    assert "no data" in line_chart({"a": [(0, None)]}, title="t", x_label="x", y_label="y")


def test_write_html_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = write_html(every_section_doc(), tmp_path / "sub" / "r.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]  # no temp file left


# ---------------------------------------------------------------- in pytest

MODULE = '''
import pytest
from rethink_checks.models import mlp
pytestmark = pytest.mark.rethink(train_size=40, batch_size=20, lr=0.1, max_epochs=2,
                                 device="cpu", fit_threshold=0.1, memorize_threshold=0.1)

@pytest.fixture
def rethink_model(request):
    if "gaussian" in request.node.name:  # Ctrl-C while the second item starts
        raise KeyboardInterrupt
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=8)
'''


def test_an_interrupted_run_leaves_a_readable_page(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE)
    reprec = pytester.inline_run("--rethink", "--rethink-checks=true_labels,gaussian",
                                 "--rethink-html=out/report.html", no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert "status: interrupted" in page and "KeyboardInterrupt" in page
    assert "true_labels" in page and 'class="PASS"' in page


def test_the_page_is_current_while_the_session_runs(pytester: pytest.Pytester) -> None:
    """After the first item the page already holds it (status running): the same rule as the
    JSON, checked from a second test module that runs after the rethink items."""
    pytester.makepyfile(test_a=MODULE, test_b='''
from pathlib import Path

def test_page_so_far():
    page = Path("report.html").read_text(encoding="utf-8")
    assert "status: running" in page and "true_labels" in page
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels",
                                "--rethink-html=report.html", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["rethink: wrote 1 item(s) to *report.html"])
    assert "status: finished" in (pytester.path / "report.html").read_text(encoding="utf-8")


def test_a_real_browser_renders_every_section(tmp_path: Path) -> None:
    """Headless chromium (Debian's package, driven by Playwright) opens the page from disk:
    the verdict table has its rows, every image decoded (naturalWidth > 0), no console error,
    and the run's ``<script>`` did not run."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("no chromium installed (apt-get install chromium)")
    path = write_html(every_section_doc(), tmp_path / "report.html")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            rows = page.locator("table.verdicts tr").count()
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            headings = page.locator("h2").all_inner_texts()
            evil_text = page.locator("table.verdicts").inner_text()
        finally:
            browser.close()
    assert rows == 1 + len(every_section_doc()["items"])
    assert len(widths) >= 6 and all(w > 0 for w in widths)
    assert not errors and not dialogs
    assert "<script>alert(1)</script>" in evil_text
    assert any("Figure 1a" in h for h in headings) and any("Environment" in h for h in headings)
