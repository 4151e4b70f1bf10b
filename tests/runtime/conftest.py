"""Runtime fixtures: a runtime per backend (the fast C-API path and the public-API fallback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from cms.runtime import HostOps, Limits, Plugin, Runtime, RuntimeConfig
from tests.runtime import guests


_OPEN: list[Runtime] = []


@pytest.fixture(autouse=True)
def _close_runtimes() -> Iterator[None]:
    """Each Engine reserves address space and runs a ticker thread: close them after each test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def make_runtime(tmp_path: Path, backend: str = "fast", ops: HostOps | None = None,
                 **config: Any) -> Runtime:
    """A runtime with its artifacts under `tmp_path`; it compiles on load unless told otherwise."""
    config.setdefault("compile_missing", True)
    runtime = Runtime(RuntimeConfig(artifact_dir=tmp_path / "artifacts", backend=backend, **config), ops)
    _OPEN.append(runtime)
    return runtime


@pytest.fixture(params=["fast", "public"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(tmp_path: Path, backend: str) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, backend)
    yield rt
    # Whatever a test's guest did, the process must still run a good plugin afterwards.
    echo = rt.load(guests.module(), plugin_id="echo", version="1.0.0")
    assert echo.call("ping", {"n": 1}).output["echo"]["params"] == {"n": 1}


def load(runtime: Runtime, wasm: bytes, limits: Limits | None = None,
         grants: frozenset[str] = frozenset()) -> Plugin:
    return runtime.load(wasm, plugin_id="guest", version="0.1.0", limits=limits, grants=grants)
