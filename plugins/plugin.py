"""The ``rethink`` pytest plugin. Does nothing until ``--rethink`` is given."""
from __future__ import annotations


def pytest_addoption(parser):
    group = parser.getgroup("rethink", "rethink_checks: randomization tests of generalization")
    group.addoption("--rethink", action="store_true", default=False,
                    help="run the randomization checks for every module defining rethink_model")
