// Giving up cleanly: the ABI's `abort` op, sent from static memory (allocating may be what failed).

/** The host's `cms.log(level, ptr, len)`. */
@external("cms", "log")
export declare function hostLog(level: i32, ptr: usize, len: usize): void;

/** The host's `cms.call(ptr, len) -> (answer_ptr << 32) | answer_len`. */
@external("cms", "call")
export declare function hostCall(ptr: usize, len: usize): u64;

/** Bytes of the host's `abort` message (it keeps at most 500 characters). */
const MESSAGE_BYTES: usize = 512;
const REQUEST_BYTES: usize = 64 + MESSAGE_BYTES * 2;
const request: usize = memory.data(<i32>REQUEST_BYTES);

function putAscii(at: usize, text: string): usize {
  for (let i = 0; i < text.length; i++) store<u8>(at + <usize>i, <u8>text.charCodeAt(i));
  return at + <usize>text.length;
}

/** Writes `text` as JSON string content (UTF-8, escaped) at `at`, at most `max` bytes of it. */
function putEscaped(at: usize, text: string, max: usize): usize {
  const end = at + max;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>text.charCodeAt(i);
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
      const low = <u32>text.charCodeAt(i + 1);
      if (low >= 0xDC00 && low < 0xE000) {
        c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
        i++;
      }
    }
    if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
    const size: usize = c < 0x20 ? 6 : c == 0x22 || c == 0x5C ? 2 : c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (at + size > end) break;
    if (c < 0x20) {
      at = putAscii(at, "\\u00");
      store<u8>(at++, <u8>"0123456789abcdef".charCodeAt(c >> 4));
      store<u8>(at++, <u8>"0123456789abcdef".charCodeAt(c & 15));
    } else if (c == 0x22 || c == 0x5C) {
      store<u8>(at++, 0x5C);
      store<u8>(at++, <u8>c);
    } else if (c < 0x80) {
      store<u8>(at++, <u8>c);
    } else if (c < 0x800) {
      store<u8>(at++, <u8>(0xC0 | (c >> 6)));
      store<u8>(at++, <u8>(0x80 | (c & 63)));
    } else if (c < 0x10000) {
      store<u8>(at++, <u8>(0xE0 | (c >> 12)));
      store<u8>(at++, <u8>(0x80 | ((c >> 6) & 63)));
      store<u8>(at++, <u8>(0x80 | (c & 63)));
    } else {
      store<u8>(at++, <u8>(0xF0 | (c >> 18)));
      store<u8>(at++, <u8>(0x80 | ((c >> 12) & 63)));
      store<u8>(at++, <u8>(0x80 | ((c >> 6) & 63)));
      store<u8>(at++, <u8>(0x80 | (c & 63)));
    }
  }
  return at;
}

function putDecimal(at: usize, n: usize): usize {
  let digits: usize = 1;
  for (let v = n; v >= 10; v /= 10) digits++;
  for (let i = digits; i > 0; i--) {
    store<u8>(at + i - 1, <u8>(0x30 + n % 10));
    n /= 10;
  }
  return at + digits;
}

function send(end: usize): void {
  end = putAscii(end, "\"}}");
  hostCall(request, end - request);
  unreachable(); // the host ends the call; this is never reached
}

/** Ends the call with fault `kind` ("trap" or "memory_limit") and `message`. Allocates nothing. */
export function abortWith(kind: string, message: string): void {
  let at = putAscii(request, "{\"op\":\"abort\",\"args\":{\"kind\":\"");
  at = putAscii(at, kind);
  at = putAscii(at, "\",\"message\":\"");
  send(putEscaped(at, message, MESSAGE_BYTES * 2));
}

/** Ends the call with fault memory_limit: "out of memory allocating `size` bytes". */
export function outOfMemory(size: usize): void {
  let at = putAscii(request, "{\"op\":\"abort\",\"args\":{\"kind\":\"memory_limit\",\"message\":\"out of memory allocating ");
  at = putDecimal(at, size);
  send(putAscii(at, " bytes"));
}

/** AssemblyScript's `abort` (a throw, a failed assertion, an index out of range), as
 *  `--use abort=~lib/cms/abort/cmsAbort` installs it: fault trap with the message. */
export function cmsAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  abortWith("trap", message !== null ? message : "abort");
}
