"""Models and data as they come: output forms, batch forms, a last batch of one, init, regularizers.

Tiny models on a few dozen examples: each test checks the harness's handling, not learning.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import torchvision.ops  # noqa: F401 - loaded once (tests/conftest.py says why)
from torch import nn

from rethink_checks.adapters import OUTPUT_FORMS, logits_of, output_form
from rethink_checks.collate import pad_collate
from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import as_dataset, from_tensors
from rethink_checks.errors import DataError, LabelWarning, ModelError, NotApplicable
from rethink_checks.regularizers import reinitialize, remove_dropout
from rethink_checks.training import fit
from rethink_checks.vectors import random_positions, random_tokens, shuffle_positions


def blobs(n: int = 40, d: int = 6, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, d, generator=g) * 0.3 + nn.functional.one_hot(y, d).float() * 2
    return from_tensors(x[: n - 8], y[: n - 8], x[n - 8:], y[n - 8:])


class Wrapped(nn.Module):
    """Returns its logits in one of the accepted forms; ``aux`` only in train mode (GoogLeNet)."""

    def __init__(self, form: str, d: int = 6, k: int = 3):
        super().__init__()
        self.form, self.lin, self.aux = form, nn.Linear(d, k), nn.Linear(d, k)

    def forward(self, x):
        out = self.lin(x)
        if self.form == "attribute":
            return type("Output", (), {"logits": out, "loss": None})()
        if self.form == "key":
            return {"logits": out, "hidden": x}
        if self.form == "aux":
            return (out, self.aux(x)) if self.training else out
        return out


@pytest.mark.parametrize("form, recorded", [
    ("tensor", "tensor"), ("attribute", "logits attribute"), ("key", "logits key"),
    ("aux", "first element in train mode, tensor in eval mode")])
def test_every_output_form_trains_and_is_recorded(form, recorded):
    result = fit(Wrapped(form), blobs(), lr=0.5, batch_size=8, max_epochs=30, eval_every=1, device="cpu")
    assert result.fitted
    assert result.settings["output"] == recorded


def test_output_forms_are_read_alike():
    t = torch.randn(2, 3)
    assert [output_form(o) for o in (t, {"logits": t}, (t, None), [t])] == \
        ["tensor", "logits key", "first element", "first element"]
    assert all(torch.equal(logits_of(o), t) for o in (t, {"logits": t}, (t, None)))
    assert set(OUTPUT_FORMS) >= {"tensor", "logits attribute", "logits key", "first element"}


@pytest.mark.parametrize("bad, name", [("text", "str"), ({"scores": 1}, "dict"), ((), "tuple")])
def test_an_output_without_logits_is_named_with_the_fix(bad, name):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, x):
            return bad

    with pytest.raises(ModelError, match=f"returned {name}; expected logits: return the logits tensor"):
        fit(Odd(), blobs(), max_epochs=1, device="cpu")


def test_train_mode_only_shape_errors_are_caught_by_the_probe():
    class TrainWrong(Wrapped):
        def forward(self, x):
            return self.lin(x)[:, :2] if self.training else self.lin(x)

    with pytest.raises(ModelError, match=r"expected \(32, 3\).* in train mode"):
        fit(TrainWrong("tensor"), blobs(), max_epochs=1, device="cpu")


def test_the_probe_leaves_no_trace(monkeypatch):
    """The train-mode probe forks the RNG and restores batch-norm buffers: a dropout + BN model
    trains bit-identically to a fit whose probe makes no forward at all (same seed, CPU)."""
    import rethink_checks.training as training

    def net():
        return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.3), nn.Linear(16, 3))

    a = fit(net, blobs(), max_epochs=2, batch_size=8, device="cpu")
    monkeypatch.setattr(training, "_probe", lambda *args, **kw: ("tensor", False))
    b = fit(net, blobs(), max_epochs=2, batch_size=8, device="cpu")
    assert a.curves["train_loss"] == b.curves["train_loss"]
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_a_last_batch_of_one_is_dropped_for_batchnorm():
    data = blobs(n=41)  # 33 training examples, batch 8: a last batch of one
    bn = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    result = fit(bn, data, batch_size=8, max_epochs=2, device="cpu")
    assert result.settings["dropped_last_batch"] is True and result.settings["steps_per_epoch"] == 4
    plain = fit(nn.Linear(6, 3), data, batch_size=8, max_epochs=2, device="cpu")  # no BN: kept
    assert plain.settings["dropped_last_batch"] is False and plain.settings["steps_per_epoch"] == 5
    even = fit(bn, blobs(n=42), batch_size=8, max_epochs=2, device="cpu")  # a last batch of two
    assert even.settings["dropped_last_batch"] is False and even.settings["steps_per_epoch"] == 5


def test_init_reinit_varies_an_instance_with_the_seed_and_as_given_keeps_it():
    model = nn.Linear(6, 3)
    with torch.no_grad():
        model.weight.fill_(0.5)
    tiny = dict(lr=1e-12, max_epochs=1, device="cpu")
    kept = fit(model, blobs(), init="as_given", **tiny)
    assert kept.settings["init"] == "as_given"
    assert torch.allclose(kept.model.weight, model.weight)
    seeds = [fit(model, blobs(), seed=s, **tiny) for s in (0, 1)]  # default "auto": an instance is reset
    assert [r.settings["init"] for r in seeds] == ["reinit", "reinit"]
    assert not torch.allclose(seeds[0].model.weight, model.weight)
    assert not torch.allclose(seeds[0].model.weight, seeds[1].model.weight)
    again = fit(model, blobs(), seed=0, **tiny)
    assert torch.equal(again.model.weight, seeds[0].model.weight)  # deterministic per seed
    factory = fit(lambda: nn.Linear(6, 3), blobs(), **tiny)
    assert factory.settings["init"] == "as_given"  # a factory already builds a fresh model


def test_reinitialize_resets_every_module_with_parameters():
    model = nn.Sequential(nn.Conv1d(2, 2, 1), nn.BatchNorm1d(2), nn.Linear(2, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    assert reinitialize(model) == ["0", "1", "2"]
    assert not any(bool((p == 7.0).all()) for p in model.parameters())


def test_stochastic_depth_goes_with_dropout():
    from torchvision.ops import StochasticDepth

    model = nn.Sequential(nn.Linear(4, 4), StochasticDepth(0.5, "row"), nn.Dropout(0.1))
    _, paths = remove_dropout(model)
    assert paths == ["1", "2"]


def test_timm_droppath_goes_with_dropout():
    layers = pytest.importorskip("timm.layers")
    _, paths = remove_dropout(nn.Sequential(nn.Linear(4, 4), layers.DropPath(0.2)))
    assert paths == ["1"]


def test_functional_dropout_and_label_smoothing_are_named_as_not_removable():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)
            self.criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

        def forward(self, x):
            return self.lin(nn.functional.dropout(x, 0.5, self.training))

    result = fit(Functional(), blobs(), max_epochs=1, remove=("dropout",), device="cpu")
    assert "not_removable:functional dropout (two train-mode forwards on one batch differ)" in result.removed
    assert "not_removable:label_smoothing:criterion" in result.removed
    clean = fit(nn.Sequential(nn.Linear(6, 3), nn.Dropout(0.5)), blobs(), max_epochs=1,
                remove=("dropout",), device="cpu")
    assert clean.removed == ["dropout:1"]  # the module went and the forward is deterministic


# ---------------------------------------------------------------- inputs

def token_items(n: int = 48, seed: int = 0, mapping: bool = True):
    """Variable-length sequences whose first token names the class."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        ids = torch.randint(4, 30, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g)
        ids[0] = 1 + i % 3
        items.append({"input_ids": ids, "label": i % 3} if mapping else (ids, i % 3))
    return items


class MaskedBag(nn.Module):
    """Mean of the embeddings of the real tokens: needs the mask."""

    def __init__(self, vocab: int = 32, k: int = 3):
        super().__init__()
        self.emb, self.head = nn.Embedding(vocab, 16), nn.Linear(16, k)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).float()
        return self.head((self.emb(input_ids) * m).sum(1) / m.sum(1))


def test_mapping_items_are_padded_with_a_mask_and_passed_as_keywords():
    data = as_dataset(token_items(), seed=0)
    assert data.input_form == "mapping" and data.input_keys == ("input_ids", "attention_mask")
    mask = data.train_extra["attention_mask"]
    assert mask.shape == data.train_x.shape and bool((data.train_x[mask == 0] == 0).all())
    result = fit(MaskedBag(), data, lr=0.5, batch_size=8, max_epochs=30, eval_every=1, device="cpu")
    assert result.fitted and result.settings["inputs"] == "mapping ['input_ids', 'attention_mask']"


def test_plain_variable_length_sequences_are_padded_and_the_model_gets_the_ids():
    data = as_dataset(token_items(mapping=False), seed=0)
    assert data.input_form == "tensor" and data.kind == "tokens"
    assert "attention_mask" in data.train_extra  # kept for the randomizations, not passed
    bag = nn.Sequential(nn.Embedding(32, 8), nn.Flatten(), nn.LazyLinear(3))
    assert fit(bag, data, max_epochs=1, device="cpu").settings["inputs"] == "tensor"


def test_token_randomizations_keep_padding_and_mask():
    data = as_dataset(token_items(), seed=0)
    for name in ("shuffled_pixels", "random_pixels", "gaussian"):
        out = CorruptionSpec(name, seed=3).apply(data)
        mask = data.train_extra["attention_mask"].bool()
        assert torch.equal(out.train_x[~mask], data.train_x[~mask])
        assert torch.equal(out.train_extra["attention_mask"], data.train_extra["attention_mask"])
        assert not torch.equal(out.train_x, data.train_x)


def test_a_multi_input_batch_skips_input_randomizations_but_not_label_ones():
    x = torch.randn(20, 4)
    other = torch.randn(20, 2)
    data = from_tensors(x[:16], torch.arange(16) % 2, x[16:], torch.arange(4) % 2).replace(
        train_extra={"1": other[:16]}, test_extra={"1": other[16:]}, input_form="tuple", input_keys=("0", "1"))
    with pytest.raises(NotApplicable, match="the batch passes 2 inputs"):
        CorruptionSpec("gaussian", seed=0).apply(data)
    labels = CorruptionSpec("random_labels", seed=0).apply(data)
    assert not torch.equal(labels.train_y, data.train_y)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(2, 2)

        def forward(self, x, extra):
            return self.a(x) + self.b(extra)

    assert fit(Two(), data, max_epochs=1, device="cpu").settings["inputs"] == "tuple ['0', '1']"


def test_inconsistent_items_and_bad_collates_are_named():
    items = token_items(6)
    items[3] = {"input_ids": items[3]["input_ids"], "token_type_ids": items[3]["input_ids"], "label": 0}
    with pytest.raises(DataError, match=r"dataset item 3: its input is a mapping with keys \['input_ids', "
                                        r"'token_type_ids'\] but the first item's is a mapping with keys"):
        as_dataset(items)
    with pytest.raises(DataError, match=r"the collate returned shape \(2, 4\) for 'batch'; expected a "
                                        r"tensor with one row per item \(6, ...\)"):
        as_dataset(token_items(6), collate=lambda inputs: torch.zeros(2, 4))
    with pytest.raises(DataError, match="dataset item 0: a mapping without a label key"):
        as_dataset([{"input_ids": torch.ones(3, dtype=torch.long)}] * 4)


def test_a_model_needing_a_key_the_batch_lacks_is_named():
    items = [{"input_ids": i["input_ids"][:4], "label": i["label"]} for i in token_items()]
    data = as_dataset(items, collate=lambda xs: {"input_ids": torch.nn.utils.rnn.pad_sequence(
        [x["input_ids"] for x in xs], batch_first=True)})  # a collate that makes no mask
    with pytest.raises(ModelError, match=r"missing 1 required positional argument: 'attention_mask'.*"
                                         r"the batch's keys are \['input_ids'\]"):
        fit(MaskedBag(), data, max_epochs=1, device="cpu")


def test_labels_that_leave_class_zero_empty_warn_and_can_be_remapped():
    x = torch.randn(30, 4)
    y = torch.arange(30) % 3 + 1
    with pytest.warns(LabelWarning, match=r"class\(es\) 0 of 0..3 have no training example .* drawn "
                                          r"from all 4 classes"):
        assert as_dataset((x, y)).num_classes == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        remapped = as_dataset((x, y), remap_labels=True)
    assert remapped.num_classes == 3 and int(remapped.train_y.min()) == 0


# ---------------------------------------------------------------- properties

@st.composite
def padded_tokens(draw):
    rows = draw(st.integers(1, 6))
    length = draw(st.integers(1, 8))
    lengths = draw(st.lists(st.integers(1, length), min_size=rows, max_size=rows))
    left = draw(st.booleans())
    ids = torch.tensor(draw(st.lists(st.integers(1, 50), min_size=rows * length, max_size=rows * length)))
    mask = torch.zeros(rows, length, dtype=torch.int64)
    for r, n in enumerate(lengths):
        if left:
            mask[r, length - n:] = 1
        else:
            mask[r, :n] = 1
    return ids.reshape(rows, length) * mask, mask


@settings(max_examples=60, deadline=None)
@given(padded_tokens(), st.integers(0, 2**31 - 1))
def test_permutations_rearrange_real_tokens_only(batch, seed):
    ids, mask = batch
    real = mask.bool()
    for out in (shuffle_positions(ids, seed=seed, mask=mask), random_positions(ids, seed=seed, mask=mask)):
        assert torch.equal(out[~real], ids[~real])  # padding stays
        for r in range(len(ids)):  # each row's real tokens are a rearrangement of its own
            assert sorted(out[r][real[r]].tolist()) == sorted(ids[r][real[r]].tolist())
    ones = torch.ones_like(mask)
    assert torch.equal(shuffle_positions(ids, seed=seed, mask=ones), shuffle_positions(ids, seed=seed))
    assert torch.equal(random_positions(ids, seed=seed, mask=ones), random_positions(ids, seed=seed))


@settings(max_examples=60, deadline=None)
@given(padded_tokens(), st.integers(0, 2**31 - 1))
def test_random_tokens_replace_real_tokens_from_the_real_vocabulary(batch, seed):
    ids, mask = batch
    real = mask.bool()
    out = random_tokens(ids, seed=seed, mask=mask)
    assert torch.equal(out[~real], ids[~real])
    assert set(out[real].tolist()) <= set(ids[real].tolist())
    assert torch.equal(out, random_tokens(ids, seed=seed, mask=mask))  # seeded


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=6), st.booleans())
def test_pad_collate_pads_right_and_marks_real_tokens(lengths, mapping):
    seqs = [torch.arange(1, n + 1) for n in lengths]
    batch = pad_collate([{"input_ids": s} for s in seqs] if mapping else seqs)
    if len(set(lengths)) == 1:  # one length: stacked, no mask needed
        ids = batch["input_ids"] if mapping else batch
        assert torch.equal(ids, torch.stack(seqs))
        return
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert mask.sum(1).tolist() == lengths and ids.shape == (len(lengths), max(lengths))
    for r, s in enumerate(seqs):
        assert torch.equal(ids[r, :len(s)], s) and bool((ids[r, len(s):] == 0).all())


def test_the_regularizers_check_names_what_it_could_not_remove():
    from rethink_checks.checks import CheckSettings, run_check

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, x):
            return self.lin(nn.functional.dropout(x, 0.2, self.training))

    settings = CheckSettings.from_mapping(dict(max_epochs=2, device="cpu", fit_threshold=0.1,
                                               max_regularizer_gain=1.0))
    result = run_check("regularizers", Functional, blobs(), settings)
    assert result.metrics["not_removable"] == "functional dropout (two train-mode forwards on one batch differ)"
    assert "present and not removable, so 'without' still had: functional dropout" in result.message
