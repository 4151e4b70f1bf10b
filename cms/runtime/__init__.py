"""The Flask-free plugin runtime: every plugin call in a fresh, limited wasmtime sandbox.

Typical use::

    runtime = Runtime(RuntimeConfig(artifact_dir=Path("instance/artifacts")))
    runtime.compile(wasm)                      # at build or publish time
    plugin = runtime.load(wasm, plugin_id="softphone", version="1.2.0")
    result = plugin.call("dial", {"number": "+44..."}, {"agent": {...}})
"""

from __future__ import annotations

from plugin_sdk.abi import EnvelopeError, FaultKind

from cms.runtime import growwatch
from cms.runtime.engine import EngineSettings
from cms.runtime.host import CallContext, HostOp, HostOpError, HostOps
from cms.runtime.limits import DEFAULT_CAPS, DEFAULT_LIMITS, Limits, LimitsError
from cms.runtime.results import (ArtifactError, CallResult, CallStats, HostFault, PluginFault,
                                 attributed)
from cms.runtime.runtime import Plugin, Runtime, RuntimeConfig

__all__ = [
    "ArtifactError", "CallContext", "CallResult", "CallStats", "DEFAULT_CAPS", "DEFAULT_LIMITS",
    "EngineSettings", "EnvelopeError", "FaultKind", "HostFault", "HostOp", "HostOpError", "HostOps",
    "Limits", "LimitsError", "Plugin", "PluginFault", "Runtime", "RuntimeConfig", "attributed",
]
