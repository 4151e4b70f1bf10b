// The SDK's AssemblyScript runtime: the stub runtime (a bump allocator that never frees: every
// plugin call runs in a fresh instance) that grows memory by exactly what it needs, so a grow is
// refused only at the real cap, and ends the call with fault memory_limit instead of trapping.
import { AL_MASK, OBJECT, OBJECT_OVERHEAD, BLOCK_MAXSIZE, BLOCK_OVERHEAD, BLOCK, OBJECT_MAXSIZE } from "rt/common";
import { outOfMemory } from "cms/abort";

// @ts-ignore: decorator
@lazy let startOffset: usize = ((__heap_base + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
// @ts-ignore: decorator
@lazy let offset: usize = startOffset;

/** Makes memory reach `end`; false when the host refuses the grow. */
function reserve(end: usize): bool {
  const have = <usize>memory.size() << 16;
  if (end <= have) return true;
  return memory.grow(<i32>((end - have + 0xFFFF) >>> 16)) >= 0;
}

@inline function computeSize(size: usize): usize {
  return ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
}

/** A block of `size` bytes, or 0 when memory cannot grow (what the host's cms_alloc needs). */
export function tryAlloc(size: usize): usize {
  if (size > BLOCK_MAXSIZE) return 0;
  const ptr = offset + BLOCK_OVERHEAD;
  const payload = computeSize(size);
  if (!reserve(ptr + payload)) return 0;
  changetype<BLOCK>(offset).mmInfo = payload;
  offset = ptr + payload;
  return ptr;
}

// @ts-ignore: decorator
@unsafe @global
export function __alloc(size: usize): usize {
  const ptr = tryAlloc(size);
  if (!ptr) outOfMemory(size);
  return ptr;
}

// @ts-ignore: decorator
@unsafe @global
export function __realloc(ptr: usize, size: usize): usize {
  let block = changetype<BLOCK>(ptr - BLOCK_OVERHEAD);
  const actual = block.mmInfo;
  const isLast = ptr + actual == offset;
  const payload = computeSize(size);
  if (size > actual) {
    if (isLast) { // the last block grows in place
      if (size > BLOCK_MAXSIZE || !reserve(ptr + payload)) outOfMemory(size);
      block.mmInfo = payload;
      offset = ptr + payload;
    } else { // copy to a new block at least twice the size
      const fresh = __alloc(max<usize>(payload, actual << 1));
      memory.copy(fresh, ptr, actual);
      ptr = fresh;
    }
  } else if (isLast) { // the last block shrinks
    offset = ptr + payload;
    block.mmInfo = payload;
  }
  return ptr;
}

// @ts-ignore: decorator
@unsafe @global
export function __free(ptr: usize): void {
  const block = changetype<BLOCK>(ptr - BLOCK_OVERHEAD);
  if (ptr + block.mmInfo == offset) offset = changetype<usize>(block); // the last block: discard
}

// @ts-ignore: decorator
@unsafe @global
export function __reset(): void {
  offset = startOffset;
}

// @ts-ignore: decorator
@unsafe @global
export function __new(size: usize, id: u32): usize {
  const ptr = size <= OBJECT_MAXSIZE ? tryAlloc(OBJECT_OVERHEAD + size) : 0;
  if (!ptr) outOfMemory(size);
  const object = changetype<OBJECT>(ptr - BLOCK_OVERHEAD);
  object.gcInfo = 0;
  object.gcInfo2 = 0;
  object.rtId = id;
  object.rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// @ts-ignore: decorator
@unsafe @global
export function __renew(oldPtr: usize, size: usize): usize {
  if (size > OBJECT_MAXSIZE) outOfMemory(size);
  const ptr = __realloc(oldPtr - OBJECT_OVERHEAD, OBJECT_OVERHEAD + size);
  changetype<OBJECT>(ptr - BLOCK_OVERHEAD).rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// Nothing is collected: the instance is thrown away after the call.
// @ts-ignore: decorator
@global @unsafe
export function __link(parentPtr: usize, childPtr: usize, expectMultiple: bool): void {}
// @ts-ignore: decorator
@global @unsafe
export function __pin(ptr: usize): usize { return ptr; }
// @ts-ignore: decorator
@global @unsafe
export function __unpin(ptr: usize): void {}
// @ts-ignore: decorator
@global @unsafe
function __visit(ptr: usize, cookie: u32): void {}
// @ts-ignore: decorator
@global @unsafe
export function __collect(): void {}
