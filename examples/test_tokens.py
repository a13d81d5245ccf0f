"""A token-sequence classifier under the randomization checks: an embedding + GRU.

The corpus is synthetic and seeded: 250 "documents" of 12 token ids from a 40-word
vocabulary in 4 topics of 10 words each; a document's label is its topic, and 60% of its
tokens are drawn from that topic's words, the rest from the whole vocabulary. Inputs are
integer token ids (N, 12), so the input randomizations are the token ones
(docs/corruptions.md): ``shuffled_pixels`` permutes the 12 positions once for every
document, ``random_pixels`` permutes each document's positions independently, and
``gaussian`` replaces every token by a uniform draw from the ids seen in training.
Run: ``pytest --rethink examples/test_tokens.py -v`` (about 20 s on one loaded CPU core).
"""
import pytest
import torch
from torch import nn

from rethink_checks.data import as_dataset

TOPICS, WORDS_PER_TOPIC, LENGTH, DOCUMENTS = 4, 10, 12, 250

pytestmark = pytest.mark.rethink(checks=[
    "true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian",
    "partial_labels", "slowdown"])


def corpus(seed=0):
    """(ids, labels): documents whose label is the topic most of their words come from."""
    gen = torch.Generator().manual_seed(seed)
    topic = torch.randint(0, TOPICS, (DOCUMENTS,), generator=gen)
    on_topic = torch.rand(DOCUMENTS, LENGTH, generator=gen) < 0.6
    topic_word = topic[:, None] * WORDS_PER_TOPIC + torch.randint(
        0, WORDS_PER_TOPIC, (DOCUMENTS, LENGTH), generator=gen)
    any_word = torch.randint(0, TOPICS * WORDS_PER_TOPIC, (DOCUMENTS, LENGTH), generator=gen)
    return torch.where(on_topic, topic_word, any_word), topic


class GRUClassifier(nn.Module):
    """Embed the ids, run a GRU over the sequence, classify its last hidden state."""

    def __init__(self, vocab_size, num_classes, dim=32, hidden=128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, ids):
        _, last = self.gru(self.embed(ids))
        return self.head(last[-1])


@pytest.fixture(scope="module")
def rethink_data():
    # Integer (N, L) inputs are "tokens"; vocab_size is the largest id + 1 (here 40).
    return as_dataset(corpus(), seed=0).replace(name="topics")


@pytest.fixture
def rethink_model():
    # The plugin passes vocab_size (and num_classes) to a factory that takes them.
    return lambda vocab_size, num_classes: GRUClassifier(vocab_size, num_classes)


@pytest.fixture
def rethink_config():
    return {
        # 200 training documents, batch 32 (7 steps an epoch), a fixed learning rate:
        # random labels are memorized in about 20 epochs (seed 0).
        "lr": 0.1, "batch_size": 32, "lr_decay": 1.0, "max_epochs": 200,
        # Three corruption levels keep partial_labels to three fits.
        "partial_levels": [0.0, 0.5, 1.0],
        "device": "cpu",
    }
