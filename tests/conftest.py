"""Fixtures shared by the project's tests."""
from __future__ import annotations

import pytest
import torch
# Modules that register torch operator libraries must be imported once per process, before any
# pytester in-process run: pytester unloads what a run imported, and importing them again
# raises "Only a single TORCH_LIBRARY can be used to register the namespace ..." (torch's
# manual_seed imports torch._dynamo lazily, which loads torch._inductor.test_operators).
import torch._dynamo  # noqa: F401,E402
import torchvision.ops  # noqa: F401,E402


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models train many times faster on one intra-op thread on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
