"""AssemblyScript (`lang = "ts"`): compile with the pinned `assemblyscript` from the npm registry.

Placeholder until the TypeScript guest library lands.
"""

from __future__ import annotations

from pathlib import Path


def compile_module(source: Path, output: Path, root: Path) -> bytes:
    """Compile `source` (inside the plugin folder `root`) into `output`; raises ToolchainError."""
    from plugin_sdk.toolchain import ToolchainError

    raise ToolchainError("AssemblyScript builds are not available yet")
