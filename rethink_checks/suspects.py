"""The ``suspects`` check: the mislabel finder's list as a CheckResult (rows, previews, text table).

:func:`check_suspects` runs :func:`rethink_checks.mislabels.find_mislabels` with the user's model
and ``settings.suspects`` (``--rethink-suspects=N``) and puts the ranking into
``tables["suspects"]``: one row per suspect with its scores and a preview of the input, so that
any report (JSON, terminal, HTML) can show it without the data: a small PNG (a ``data:`` URI)
for images, the raw values (``raw``, the first :data:`RAW_VALUES`) for tokens and features. It
reports and never fails on what it finds (a list is not a verdict); unusable input still raises.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .results import CheckResult, key_metric, table_summary

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .run_cache import RunCache
    from .settings import CheckSettings

__all__ = ["check_suspects", "preview", "format_rows", "FOLDS", "MAX_EPOCHS", "RAW_VALUES"]

#: the finder's step budget in epochs (lower when the fit's ``max_epochs`` is lower)
MAX_EPOCHS = 30
#: folds of the check's cross-fitting: 3 halves the cost of an epoch against cleanlab's usual 5
#: (each epoch trains 2 x N examples instead of 4 x N) at the same precision on the digits
#: (docs/memorization.md, benchmarks/results/mislabels-3folds.json)
FOLDS = 3
#: how many raw values of a token / feature row a preview keeps
RAW_VALUES = 32
#: a preview image's longest side in pixels (larger images are downscaled)
PREVIEW_SIDE = 64


def preview(x: torch.Tensor, kind: str) -> dict[str, Any]:
    """What a report shows for one input: ``{"image": data URI}`` or ``{"raw": [...]}``."""
    if kind != "image":
        values = x.reshape(-1)[:RAW_VALUES].tolist()
        return {"raw": [v if isinstance(v, int) else round(float(v), 4) for v in values]}
    from PIL import Image  # torchvision's dependency

    image = x.detach().float().cpu()
    image = image[:3] if image.shape[0] >= 3 else image[:1]
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else image * 0
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    scale = PREVIEW_SIDE / max(picture.size)
    if scale < 1:
        picture = picture.resize((max(1, round(picture.width * scale)),
                                  max(1, round(picture.height * scale))))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return {"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}


def check_suspects(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                   cache: "RunCache | None" = None) -> CheckResult:
    """The ``settings.suspects`` likeliest mislabelled training examples of ``data``."""
    from .fits import prepared
    from .mislabels import find_mislabels

    data = prepared(data, settings)
    report = find_mislabels(model_factory, data, settings, n=settings.suspects, folds=FOLDS,
                            max_epochs=min(settings.fit.max_epochs, MAX_EPOCHS))
    rows = report.top()
    for row in rows:
        row.update(preview(data.train_x[row["index"]], data.kind))
    metrics = report.metrics()
    message = (f"{len(rows)} suspects after {report.epochs} epochs x {report.folds} folds "
               f"(stopped: {report.stop_reason}; top-{len(rows)} overlap with the epoch before "
               f"{report.stability:.2f}); held-out accuracy {report.held_out_accuracy:.3f}; "
               f"estimated label issues {report.estimated_issues} ({report.estimator}); "
               f"confidence {report.confidence}")
    criterion = ("reports the training examples whose given label looks wrong (area under the "
                 "margin + out-of-sample label quality); never fails on what it finds")
    summary = table_summary(key=[key_metric("issues", report.estimated_issues, "~{}"),
                                 key_metric("confidence", report.confidence, "{}")])
    return CheckResult("suspects", True, criterion, message, metrics,
                       tables={"suspects": rows}, summary=summary)


#: text-table columns: (row key, header); a column shows when any row has the key
COLUMNS = (("rank", "rank"), ("index", "index"), ("label", "label"), ("prediction", "predicted"),
           ("score", "score"), ("aum", "AUM"), ("label_quality", "quality"), ("wrong", "wrong"),
           ("forgets", "forgets"), ("fit_epoch", "fit epoch"), ("raw", "raw values"))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        text = " ".join(str(v) for v in value[:8])
        return text + (" ..." if len(value) > 8 else "")
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """A text table of suspect rows (``tables["suspects"]`` of this check or of true_labels)."""
    columns = [(key, head) for key, head in COLUMNS if any(key in r for r in rows)]
    body = [[_cell(r.get(key)) for key, _ in columns] for r in rows]
    header = [head for _, head in columns]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(cells, widths))
                     for cells in [header] + body)
