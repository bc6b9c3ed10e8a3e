"""Shared fixtures for the model tests: one CPU thread, and no network while building."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    """Run the model tests on one intra-op thread.

    On the shared 2-core CI/dev machines, with other jobs running, torch's default of one
    OpenMP thread per core spin-waits on busy cores: a ResNet-50 forward+backward at
    224 x 224 took 3-7 s with 2 threads and 0.35 s with 1 under a load average of 6.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any outbound connection fail at once (a model build must not download)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during a model test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
