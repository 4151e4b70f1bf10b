"""WAT test guests: a small ABI v1 skeleton with the parts each test replaces."""

from __future__ import annotations

import json

import wasmtime

from plugin_sdk.abi import pack

ALLOC = """
  (func $alloc (export "cms_alloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $bump))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have))
                                                     (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $bump (local.get $end))
    (local.get $p))
"""

ECHO_HANDLE = """
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64)
    (local $out i32) (local $n i32)
    (local.set $n (i32.add (local.get $l) (i32.const 19)))
    (local.set $out (call $alloc (local.get $n)))
    (if (i32.eqz (local.get $out)) (then (return (i64.const 0))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 18))
    (memory.copy (i32.add (local.get $out) (i32.const 18)) (local.get $p) (local.get $l))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $l) (i32.const 18))) (i32.const 125))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
"""
ECHO_PREFIX = b'{"ok":true,"echo":'


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def module(*, handle: str = ECHO_HANDLE, alloc: str = ALLOC, data: bytes = ECHO_PREFIX,
           extra: str = "", imports: str = "", memory: str = '(memory (export "memory") 1)',
           abi_version: int | None = 1) -> bytes:
    """A guest module: `data` sits at offset 16; `handle`/`alloc` are whole function texts."""
    version = (f'(func (export "cms_abi_version") (result i32) (i32.const {abi_version}))'
               if abi_version is not None else "")
    text = f"""(module
  {imports}
  {memory}
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "{_wat_bytes(data)}")
  {version}
  {alloc}
  {handle}
  {extra}
)"""
    return wasmtime.wat2wasm(text)


def constant(output: bytes, **kwargs: object) -> bytes:
    """A guest whose cms_handle always returns `output` (placed at offset 16)."""
    handle = f"""
  (func (export "cms_handle") (param i32 i32) (result i64) (i64.const {pack(16, len(output))}))"""
    return module(handle=handle, data=output, **kwargs)  # type: ignore[arg-type]


def returning(packed_expr: str, **kwargs: object) -> bytes:
    """A guest whose cms_handle body is the i64 expression `packed_expr`."""
    handle = f"""
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64) {packed_expr})"""
    return module(handle=handle, **kwargs)  # type: ignore[arg-type]


def host_caller(requests: list[dict[str, object]], *, log_lines: int = 0) -> bytes:
    """A guest that logs `log_lines` lines, sends each request through cms.call, and echoes the
    last answer back as {"ok":true,"echo":<answer>}."""
    blob = b"".join(json.dumps(r).encode() for r in requests)
    offsets, at = [], 256
    for r in requests:
        size = len(json.dumps(r).encode())
        offsets.append((at, size))
        at += size
    calls = "\n".join(
        f"(local.set $ans (call $call (i32.const {o}) (i32.const {n})))" for o, n in offsets)
    logs = "\n".join("(call $log (i32.const 1) (i32.const 16) (i32.const 5))" for _ in range(log_lines))
    handle = f"""
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64)
    (local $ans i64) (local $ap i32) (local $al i32) (local $out i32)
    {logs}
    {calls}
    (local.set $ap (i32.wrap_i64 (i64.shr_u (local.get $ans) (i64.const 32))))
    (local.set $al (i32.wrap_i64 (local.get $ans)))
    (local.set $out (call $alloc (i32.add (local.get $al) (i32.const 19))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 18))
    (memory.copy (i32.add (local.get $out) (i32.const 18)) (local.get $ap) (local.get $al))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $al) (i32.const 18))) (i32.const 125))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $al) (i32.const 19)))))
  (data (i32.const 256) "{_wat_bytes(blob)}")"""
    imports = ('(import "cms" "log" (func $log (param i32 i32 i32)))\n'
               '  (import "cms" "call" (func $call (param i32 i32) (result i64)))')
    return module(handle=handle, imports=imports)
