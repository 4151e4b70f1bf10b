"""Make a refused `memory.grow` visible: a module rewrite done once, before compiling.

wasmtime's C API refuses a grow past the store's limit quietly (`memory.grow` returns -1) and
offers no hook to learn that it happened (WASMTIME_NOTES). A guest with an unchecked allocator
then writes through a bad pointer and fails in some other way, and its fault would be reported
as a trap or invalid output instead of its memory.

`instrument` rewrites every `memory.grow` (and `table.grow`) into a call to a small function
appended to the module, which does the same grow and, when it returns -1, records the size that
was asked for in one exported i64 global, `REFUSED_EXPORT`: the total pages for a memory, minus
the total elements for a table. The host reads it after each call (one global, one read: a
fresh instance starts it at 0). Appending a function, type and globals shifts no existing index, so nothing
else in the module changes. A module the decoder does not fully understand is returned as it
was (and then only the memory-size heuristic in sandbox.py applies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Part of every artifact's key: bump it when the rewrite changes.
VERSION = 2
REFUSED_EXPORT = "__cms_grow_refused"

_MAGIC = b"\x00asm\x01\x00\x00\x00"
_TYPE, _IMPORT, _FUNCTION, _TABLE, _MEMORY, _GLOBAL, _EXPORT, _CODE = 1, 2, 3, 4, 5, 6, 7, 10
#: Where each known section sits in a module (custom sections, id 0, may sit anywhere).
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
_NUMTYPES = {0x7F, 0x7E, 0x7D, 0x7C, 0x7B}
_REFTYPES = {0x70, 0x6F}
_I32, _I64 = 0x7F, 0x7E


class _Unsupported(Exception):
    """Something the decoder does not handle; the module is left as it was."""


class ReservedName(ValueError):
    """The module itself exports the grow-watch global's name: refused (abi_violation)."""


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Unsupported("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
        if shift > 70:
            raise _Unsupported("LEB128 too long")


def _skip_leb(data: bytes, pos: int) -> int:
    return _uleb(data, pos)[1]  # the same bytes for signed values


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _vec(items: list[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _leb(len(raw)) + raw


@dataclass
class _Section:
    id: int
    body: bytes


def _sections(wasm: bytes) -> list[_Section]:
    if not wasm.startswith(_MAGIC):
        raise _Unsupported("not a wasm 1.0 binary")
    pos, sections = len(_MAGIC), []
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = _uleb(wasm, pos + 1)
        if pos + size > len(wasm):
            raise _Unsupported("truncated section")
        sections.append(_Section(section_id, wasm[pos:pos + size]))
        pos += size
    return sections


def _skip_limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    pos = _skip_leb(data, pos + 1)
    return _skip_leb(data, pos) if flags & 1 else pos


def _count_types(body: bytes) -> int:
    count, pos = _uleb(body, 0)
    for _ in range(count):
        if body[pos] != 0x60:
            raise _Unsupported("a type other than a plain function type")
        pos += 1
        for _ in range(2):
            n, pos = _uleb(body, pos)
            for _ in range(n):
                if body[pos] not in _NUMTYPES | _REFTYPES:
                    raise _Unsupported("a typed reference in a function type")
                pos += 1
    return count


@dataclass
class _Imports:
    functions: int = 0
    globals: int = 0
    memories: int = 0
    tables: list[int] | None = None  # element type of every imported table, in order


def _read_imports(body: bytes) -> _Imports:
    found = _Imports(tables=[])
    assert found.tables is not None
    count, pos = _uleb(body, 0)
    for _ in range(count):
        for _ in range(2):  # module and field names
            n, pos = _uleb(body, pos)
            pos += n
        kind = body[pos]
        pos += 1
        if kind == 0x00:
            found.functions += 1
            pos = _skip_leb(body, pos)
        elif kind == 0x01:
            if body[pos + 1] & 0x04:
                raise _Unsupported("a 64-bit table")
            found.tables.append(body[pos])
            pos = _skip_limits(body, pos + 1)
        elif kind == 0x02:
            found.memories += 1
            pos = _skip_limits(body, pos)
        elif kind == 0x03:
            found.globals += 1
            pos += 2
        else:
            raise _Unsupported(f"import kind {kind:#x}")
    return found


def _table_types(body: bytes) -> list[int]:
    count, pos = _uleb(body, 0)
    types = []
    for _ in range(count):
        if body[pos] == 0x40:
            raise _Unsupported("a table with an initializer")
        if body[pos + 1] & 0x04:
            raise _Unsupported("a 64-bit table")
        types.append(body[pos])
        pos = _skip_limits(body, pos + 1)
    return types


def _export_names(body: bytes) -> set[str]:
    count, pos = _uleb(body, 0)
    names = set()
    for _ in range(count):
        n, pos = _uleb(body, pos)
        names.add(body[pos:pos + n].decode("utf-8", "replace"))
        pos = _skip_leb(body, pos + n + 1)
    return names


def _append(body: bytes, items: list[bytes]) -> bytes:
    """A vector section `body` with `items` appended."""
    count, pos = _uleb(body, 0) if body else (0, 0)
    return _leb(count + len(items)) + body[pos:] + b"".join(items)


# ---- code ---------------------------------------------------------------------------------------

_MEMARG = set(range(0x28, 0x3F))
#: ref.func (0xD2), br_on_null (0xD5) and br_on_non_null (0xD6) take an index; ref.is_null
#: (0xD1), ref.eq (0xD3) and ref.as_non_null (0xD4) none.
_ONE_INDEX = {0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
              0xD2, 0xD5, 0xD6, 0x07, 0x08, 0x09, 0x18}
_NO_IMMEDIATE = ({0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4}
                 | set(range(0x45, 0xC5)))
_BLOCKS = {0x02, 0x03, 0x04, 0x06}
#: 0xFC sub-opcodes and how many index immediates each takes (0-7: saturating truncations).
_FC_INDEXES = {**{n: 0 for n in range(8)}, 8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1,
               16: 1, 17: 1}
_MEMORY_GROW, _TABLE_GROW = 0x40, 15


def _skip_blocktype(code: bytes, pos: int) -> int:
    if code[pos] == 0x40 or code[pos] in _NUMTYPES | _REFTYPES:
        return pos + 1
    return _skip_leb(code, pos)


def _skip_memarg(code: bytes, pos: int) -> int:
    align, pos = _uleb(code, pos)
    if align & 0x40:
        pos = _skip_leb(code, pos)
    return _skip_leb(code, pos)


def _skip_simd(code: bytes, pos: int) -> int:
    sub, pos = _uleb(code, pos)
    if sub <= 11 or sub in (92, 93):
        return _skip_memarg(code, pos)
    if sub in (12, 13):
        return pos + 16
    if 21 <= sub <= 34:
        return pos + 1
    if 84 <= sub <= 91:
        return _skip_memarg(code, pos) + 1
    return pos


def _rewrite_body(body: bytes, memory_helper: int, table_helpers: dict[int, int],
                  found: set[str]) -> bytes:
    """One function body with every grow replaced by a call; `found` collects what was seen."""
    groups, pos = _uleb(body, 0)
    for _ in range(groups):
        pos = _skip_leb(body, pos)
        if body[pos] not in _NUMTYPES | _REFTYPES:
            raise _Unsupported("a typed reference local")
        pos += 1
    out = bytearray(body[:pos])
    start = pos
    while pos < len(body):
        op = body[pos]
        at = pos
        pos += 1
        if op in _NO_IMMEDIATE:
            continue
        if op in _ONE_INDEX:
            pos = _skip_leb(body, pos)
        elif op in _BLOCKS:
            pos = _skip_blocktype(body, pos)
        elif op in _MEMARG:
            pos = _skip_memarg(body, pos)
        elif op == 0x3F:
            pos = _skip_leb(body, pos)
        elif op == _MEMORY_GROW:
            memory, pos = _uleb(body, pos)
            if memory != 0:
                raise _Unsupported("memory.grow of a second memory")
            out += body[start:at] + b"\x10" + _leb(memory_helper)
            start = pos
            found.add("memory")
        elif op in (0x11, 0x13):
            pos = _skip_leb(body, _skip_leb(body, pos))
        elif op == 0x0E:
            n, pos = _uleb(body, pos)
            for _ in range(n + 1):
                pos = _skip_leb(body, pos)
        elif op == 0x1C:
            n, pos = _uleb(body, pos)
            pos += n
        elif op == 0x41 or op == 0x42:
            pos = _skip_leb(body, pos)
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op == 0xD0:
            if body[pos] not in _REFTYPES:
                raise _Unsupported("ref.null of a typed reference")
            pos += 1
        elif op == 0xFC:
            sub, pos = _uleb(body, pos)
            if sub not in _FC_INDEXES:
                raise _Unsupported(f"opcode 0xfc {sub}")
            if sub == _TABLE_GROW:
                table, pos = _uleb(body, pos)
                if table not in table_helpers:
                    raise _Unsupported("table.grow of an unknown table")
                out += body[start:at] + b"\x10" + _leb(table_helpers[table])
                start = pos
                found.add("table")
                continue
            for _ in range(_FC_INDEXES[sub]):
                pos = _skip_leb(body, pos)
        elif op == 0xFD:
            pos = _skip_simd(body, pos)
        else:
            raise _Unsupported(f"opcode {op:#x}")
    if pos != len(body):
        raise _Unsupported("an instruction runs past its body")
    out += body[start:]
    return bytes(out)


def _memory_helper(refused_global: int) -> bytes:
    """(func (param $pages i32) (result i32)): memory.grow, recording a refusal's total pages."""
    g = _leb(refused_global)
    code = (b"\x01\x01\x7f"                              # one i32 local: the result
            b"\x20\x00\x40\x00\x22\x01"                  # local.get 0; memory.grow 0; local.tee 1
            b"\x41\x7f\x46\x04\x40"                      # i32.const -1; i32.eq; if
            b"\x3f\x00\xad\x20\x00\xad\x7c\x24" + g +    # size + pages (as i64); global.set
            b"\x0b\x20\x01\x0b")                         # end; local.get 1; end
    return _leb(len(code)) + code


def _table_helper(table: int, refused_global: int) -> bytes:
    """(func (param ref i32) (result i32)): table.grow, recording a refusal's total elements
    (negated, to tell it from a memory's pages)."""
    t, g = _leb(table), _leb(refused_global)
    code = (b"\x01\x01\x7f"
            b"\x20\x00\x20\x01\xfc\x0f" + t + b"\x22\x02"
            b"\x41\x7f\x46\x04\x40"
            b"\x42\x00\xfc\x10" + t + b"\xad\x20\x01\xad\x7c\x7d\x24" + g +  # 0 - total
            b"\x0b\x20\x02\x0b")
    return _leb(len(code)) + code


def instrument(wasm: bytes) -> bytes:
    """`wasm` with its grows watched (see the module docstring), or unchanged when it has none
    or uses something the decoder does not handle. Raises ReservedName when the module exports
    the host's reserved global name itself."""
    try:
        return _instrument(wasm)
    except (_Unsupported, IndexError, KeyError, UnicodeDecodeError) as exc:
        logger.info("grow watch left a module as it was: %s", exc)
        return wasm


def _instrument(wasm: bytes) -> bytes:
    sections = _sections(wasm)
    by_id = {s.id: s for s in sections if s.id != 0}
    if _CODE not in by_id or _FUNCTION not in by_id or _TYPE not in by_id:
        return wasm
    if _EXPORT in by_id and REFUSED_EXPORT in _export_names(by_id[_EXPORT].body):
        # Its own global under the host's name would let it pass any fault off as memory_limit.
        raise ReservedName(f"the module exports {REFUSED_EXPORT!r}, a name the host reserves")
    imports = _read_imports(by_id[_IMPORT].body) if _IMPORT in by_id else _Imports(tables=[])
    assert imports.tables is not None
    if imports.memories == 0 and _MEMORY not in by_id:
        return wasm  # no memory to grow (and the ABI check refuses such a module anyway)
    tables = imports.tables + (_table_types(by_id[_TABLE].body) if _TABLE in by_id else [])
    if any(t not in _REFTYPES for t in tables):
        raise _Unsupported("a table of typed references")
    types = _count_types(by_id[_TYPE].body)
    defined, _ = _uleb(by_id[_FUNCTION].body, 0)
    defined_globals = _uleb(by_id[_GLOBAL].body, 0)[0] if _GLOBAL in by_id else 0
    refused_global = imports.globals + defined_globals

    memory_helper = imports.functions + defined
    table_helpers = {t: memory_helper + 1 + t for t in range(len(tables))}
    found: set[str] = set()
    code = by_id[_CODE].body
    count, pos = _uleb(code, 0)
    bodies = []
    for _ in range(count):
        size, pos = _uleb(code, pos)
        body = _rewrite_body(code[pos:pos + size], memory_helper, table_helpers, found)
        bodies.append(_leb(len(body)) + body)
        pos += size
    if not found:
        return wasm

    # One type for the memory helper, then one per table's element type.
    new_types = [b"\x60\x01\x7f\x01\x7f"] + [bytes([0x60, 0x02, t, 0x7F, 0x01, 0x7F]) for t in tables]
    new_functions = [_leb(types + i) for i in range(len(new_types))]
    helpers = [_memory_helper(refused_global)] + [_table_helper(t, refused_global)
                                                  for t in range(len(tables))]
    zero_i64 = b"\x7e\x01\x42\x00\x0b"  # (mut i64) (i64.const 0)
    exports = [_name(REFUSED_EXPORT) + b"\x03" + _leb(refused_global)]

    replaced = {
        _TYPE: _append(by_id[_TYPE].body, new_types),
        _FUNCTION: _append(by_id[_FUNCTION].body, new_functions),
        _GLOBAL: _append(by_id[_GLOBAL].body if _GLOBAL in by_id else b"", [zero_i64]),
        _EXPORT: _append(by_id[_EXPORT].body if _EXPORT in by_id else b"", exports),
        _CODE: _vec(bodies + helpers),
    }
    out = bytearray(_MAGIC)
    pending = {sid for sid in (_GLOBAL, _EXPORT) if sid not in by_id}
    for section in sections:
        for sid in sorted(pending, key=_ORDER.__getitem__):
            if section.id != 0 and _ORDER[section.id] > _ORDER[sid]:
                out += _encode(sid, replaced[sid])
                pending.discard(sid)
        out += _encode(section.id, replaced.get(section.id, section.body)
                       if section.id != 0 else section.body)
    for sid in sorted(pending, key=_ORDER.__getitem__):
        out += _encode(sid, replaced[sid])
    return bytes(out)


def _encode(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(body)) + body
