"""Rust (`lang = "rust"`): compile with a cargo whose sysroot has wasm32-unknown-unknown.

Placeholder until the Rust guest crate lands.
"""

from __future__ import annotations

from pathlib import Path


def compile_module(source: Path, output: Path, root: Path) -> bytes:
    """Compile `source` (inside the plugin folder `root`) into `output`; raises ToolchainError."""
    from plugin_sdk.toolchain import ToolchainError

    raise ToolchainError("Rust builds are not available yet")
