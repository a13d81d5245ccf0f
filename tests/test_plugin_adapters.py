"""Models and data as they come, end to end through the plugin (``pytester``).

Tiny models on a few dozen examples with lenient thresholds: these tests check that each
form reaches the checks and is recorded in the JSON, not the paper's claims.
"""
from __future__ import annotations

import json

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here: pytester's in-process runs unload
import torch  # noqa: F401 - modules they import; extension modules must not load twice
import torchvision  # noqa: F401

import rethink_checks.streaming  # noqa: F401
import rethink_checks.training  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ARGS = ("--rethink", "--rethink-checks=true_labels,random_labels", "-p", "no:cacheprovider",
        "--rethink-json=out.json")

HEAD = '''
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.rethink(batch_size=8, lr=0.1, lr_decay=1.0, max_epochs=60, eval_every=1,
                                 fit_threshold=0.9, memorize_threshold=0.9, device="cpu")


def blobs(n=48, d=6, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    x = torch.randn(n, d, generator=g)
    return x[:40], y[:40], x[40:], y[40:]


@pytest.fixture
def rethink_data():
    return blobs()


def mlp(num_classes=3):
    return nn.Sequential(nn.Linear(6, 128), nn.ReLU(), nn.Linear(128, num_classes))
'''

TOKENS = '''
def token_items(n=60, mapping=True, mask=False):
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        ids = torch.randint(4, 30, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g)
        ids[0] = 1 + i % 3
        if not mapping:
            items.append((ids, i % 3))
        elif mask:  # fixed length with the mask the items carry
            full = torch.zeros(8, dtype=torch.long)
            full[:len(ids)] = ids
            items.append({"input_ids": full, "attention_mask": (full != 0).long(), "label": i % 3})
        else:
            items.append({"input_ids": ids, "label": i % 3})
    return items


class MaskedBag(nn.Module):
    def __init__(self, vocab_size=32, num_classes=3):
        super().__init__()
        self.emb, self.head = nn.Embedding(32, 32), nn.Linear(32, num_classes)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).float()
        return self.head((self.emb(input_ids) * m).sum(1) / m.sum(1))
'''


def entries(pytester: pytest.Pytester) -> dict[str, dict]:
    doc = json.loads((pytester.path / "out.json").read_text())
    return {item["nodeid"].split("::", 1)[1]: item for item in doc["items"]}


HF_STYLE = '''
class Output:
    def __init__(self, logits):
        self.logits, self.loss = logits, None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = mlp()

    def forward(self, x):
        return Output(self.body(x))
'''

GOOGLENET_STYLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.aux = mlp(), nn.Linear(6, 3)

    def forward(self, x):
        logits = self.body(x)
        return (logits, self.aux(x)) if self.training else logits
'''


@pytest.mark.parametrize("model, recorded", [
    (HF_STYLE, "logits attribute"),
    (GOOGLENET_STYLE, "first element in train mode, tensor in eval mode")], ids=["hf_output_object",
                                                                               "googlenet_train_tuple"])
def test_output_forms(pytester: pytest.Pytester, model: str, recorded: str) -> None:
    """An HF-style output object, and a GoogLeNet-style (logits, aux) tuple in train mode only."""
    pytester.makepyfile(test_output=HEAD + model + '''

@pytest.fixture
def rethink_model():
    return Model
''')
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)
    for entry in entries(pytester).values():
        assert entry["metrics"]["output"] == recorded


@pytest.mark.parametrize("carried, randomization", [(True, "random_pixels"), (False, "shuffled_pixels")])
def test_mapping_input_with_a_mask_and_padded_variable_length_tokens(
        pytester: pytest.Pytester, carried: bool, randomization: str) -> None:
    """Items carry input_ids and attention_mask (fixed length), or variable-length input_ids the
    default collate pads, adding the mask; the model takes them as keywords; the token
    randomization keeps the mask."""
    pytester.makepyfile(test_mapping=HEAD + TOKENS + f'''
@pytest.fixture
def rethink_data():
    return token_items(mask={carried})


@pytest.fixture
def rethink_model():
    return MaskedBag
''')
    pytester.runpytest(*ARGS[:1], f"--rethink-checks=true_labels,random_labels,{randomization}",
                       *ARGS[2:]).assert_outcomes(passed=3)
    for entry in entries(pytester).values():
        assert entry["metrics"]["inputs"] == "mapping ['input_ids', 'attention_mask']"


def test_a_multi_input_model_skips_input_randomizations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_two=HEAD + '''
class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return (torch.randn(4, generator=g), torch.randn(2, generator=g) + i % 2), i % 2


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 64), nn.Linear(2, 64)
        self.head = nn.Linear(64, 2)

    def forward(self, x, extra):
        return self.head(torch.relu(self.a(x) + self.b(extra)))


@pytest.fixture
def rethink_data():
    return Items()


@pytest.fixture
def rethink_model():
    return Two
''')
    result = pytester.runpytest(*ARGS[:1], "--rethink-checks=true_labels,gaussian", *ARGS[2:], "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*gaussian is not applicable to multi-input (0, 1) inputs: the batch "
                                 "passes 2 inputs to the model*"])


def test_streamed_dataset(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_streamed=HEAD + '''
from rethink_checks.streaming import streamed


class Images(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(48, 1, 4, 4, generator=g)
        self.targets = (torch.arange(48) % 3).tolist()

    def __len__(self):
        return 48

    def __getitem__(self, i):
        return self.x[i], self.targets[i]


@pytest.fixture
def rethink_data():
    return streamed(Images(), workers=0)


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: nn.Sequential(nn.Flatten(), nn.Linear(16, 256), nn.ReLU(),
                                                          nn.Linear(256, num_classes))
''')
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)
    for entry in entries(pytester).values():
        assert entry["metrics"]["streamed"] is True


def test_pretrained_instance_with_reinit(pytester: pytest.Pytester) -> None:
    """A module instance (weights as if pretrained) is re-initialized per seed under init=reinit;
    as_given keeps it (recorded either way)."""
    pytester.makepyfile(test_instance=HEAD + '''
@pytest.fixture
def rethink_model():
    model = mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)  # a start no seed would draw
    return model


pytestmark = [pytestmark, pytest.mark.rethink(init="reinit")]
''')
    pytester.runpytest(*ARGS, "--rethink-seeds=2").assert_outcomes(passed=2)
    for entry in entries(pytester).values():
        assert entry["metrics"]["init"] == "reinit"


def test_timm_resnet18_with_no_test_file(pytester: pytest.Pytester) -> None:
    pytest.importorskip("timm")
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider", "--rethink-model=timm:resnet18",
                                "--rethink-checks=true_labels", "--rethink-train-size=32",
                                "--rethink-max-epochs=1", "--rethink-device=cpu", "--rethink-json=out.json")
    (entry,) = json.loads((pytester.path / "out.json").read_text())["items"]
    assert entry["nodeid"] == "rethink-model::timm:resnet18::rethink[true_labels]"
    assert entry["outcome"] in ("passed", "failed"), entry.get("message")  # one epoch: either
    assert entry["metrics"]["num_parameters"] > 11_000_000
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)


def test_timm_spec_errors_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytest.importorskip("timm")
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider", "--rethink-model=timm:no_such_net")
    result.stderr.fnmatch_lines(["*--rethink-model=timm:no_such_net: timm has no model 'no_such_net'*"])


def test_inconsistent_items_are_an_error_naming_the_item(pytester: pytest.Pytester) -> None:
    """One bad data fixture errors its items with the index; another module is unaffected."""
    pytester.makepyfile(test_bad=HEAD + TOKENS + '''
@pytest.fixture
def rethink_data():
    items = token_items()
    items[7] = {"input_ids": items[7]["input_ids"], "segments": items[7]["input_ids"], "label": 1}
    return items


@pytest.fixture
def rethink_model():
    return MaskedBag
''', test_good=HEAD + '''
@pytest.fixture
def rethink_model():
    return lambda num_classes: mlp(num_classes)
''')
    pytester.runpytest(*ARGS).assert_outcomes(passed=2, errors=2)
    doc = json.loads((pytester.path / "out.json").read_text())
    bad = [e for e in doc["items"] if "test_bad" in e["nodeid"]]
    assert all("dataset item 7: its input is a mapping with keys ['input_ids', 'segments']"
               in e["message"] for e in bad)


def test_tiny_bert_unwrapped_on_padded_text(pytester: pytest.Pytester) -> None:
    """transformers' BertForSequenceClassification as users build it, unwrapped, on padded
    variable-length text: true labels and random labels fit under AdamW (the recipe's)."""
    pytest.importorskip("transformers")
    pytester.makepyfile(test_bert=TOKENS.replace("def token_items", "import pytest\nimport torch\n"
                                                 "from torch import nn\n\n\ndef token_items") + '''
from transformers import BertConfig, BertForSequenceClassification

pytestmark = pytest.mark.rethink(optimizer="adamw", lr=1e-3, batch_size=8, max_epochs=150, device="cpu")


@pytest.fixture
def rethink_data():
    return token_items(96)


@pytest.fixture
def rethink_model():
    def bert(vocab_size, num_classes):
        return BertForSequenceClassification(BertConfig(
            vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, max_position_embeddings=32, num_labels=num_classes))
    return bert
''')
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)
    for entry in entries(pytester).values():
        assert entry["metrics"]["output"] == "logits attribute"
        assert entry["metrics"]["inputs"] == "mapping ['input_ids', 'attention_mask']"
