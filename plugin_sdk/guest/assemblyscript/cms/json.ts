// JSON for plugins: a reader (UTF-8 bytes -> JsonValue, strings as AssemblyScript's UTF-16) and a
// writer (values -> UTF-8 bytes, escaped) that inserts commas itself.
import { abortWith } from "./abort";
import { decimalToDouble } from "./decimal";

/** Nesting deeper than this is not valid input; the writer allows twice as much. */
export const MAX_DEPTH = 32;
const MAX_WRITE_DEPTH = 64;

export const enum Kind { MISSING, NULL, BOOL, NUMBER, STRING, ARRAY, OBJECT }

/** A parsed JSON value. Accessors never fail: a missing value or another type gives the default. */
export class JsonValue {
  kind: Kind;
  key: string = "";        // the member's name, in an object
  bool: bool = false;
  isInt: bool = false;     // the number is held exactly in `int`
  int: i64 = 0;
  num: f64 = 0;
  str: string = "";
  items: JsonValue[] | null = null; // elements or members, in order

  constructor(kind: Kind) { this.kind = kind; }

  /** The member `key` of an object (the first of that name), else a missing value. */
  get(key: string): JsonValue {
    const items = this.items;
    if (this.kind == Kind.OBJECT && items !== null) {
      for (let i = 0; i < items.length; i++) if (unchecked(items[i]).key == key) return unchecked(items[i]);
    }
    return missing();
  }
  /** Element `i` of an array, else a missing value. */
  at(i: i32): JsonValue {
    const items = this.items;
    return this.kind == Kind.ARRAY && items !== null && i >= 0 && i < items.length ? unchecked(items[i]) : missing();
  }
  /** Elements of an array or members of an object (each with its `key`), in order; else none. */
  get children(): JsonValue[] {
    const items = this.items;
    return items !== null ? items : [];
  }
  /** Members of an array or object, characters (UTF-16 units) of a string, else 0. */
  get length(): i32 {
    const items = this.items;
    if (items !== null) return items.length;
    return this.kind == Kind.STRING ? this.str.length : 0;
  }
  get exists(): bool { return this.kind != Kind.MISSING; }
  get isNull(): bool { return this.kind == Kind.MISSING || this.kind == Kind.NULL; }
  get isString(): bool { return this.kind == Kind.STRING; }
  get isNumber(): bool { return this.kind == Kind.NUMBER; }
  get isArray(): bool { return this.kind == Kind.ARRAY; }
  get isObject(): bool { return this.kind == Kind.OBJECT; }

  asString(def: string = ""): string { return this.kind == Kind.STRING ? this.str : def; }
  asBool(def: bool = false): bool { return this.kind == Kind.BOOL ? this.bool : def; }
  /** The number as a double, else `def`. */
  asNumber(def: f64 = 0): f64 {
    if (this.kind != Kind.NUMBER) return def;
    return this.isInt ? <f64>this.int : this.num;
  }
  /** An integer exactly to 64 bits (an integral double is converted), else `def`. */
  asInt(def: i64 = 0): i64 {
    if (this.kind != Kind.NUMBER) return def;
    if (this.isInt) return this.int;
    const d = this.num;
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == <f64><i64>d ? <i64>d : def;
  }
  /** Compact JSON text of this value ("null" for a missing one). */
  stringify(): string {
    const w = new JsonWriter();
    w.value(this);
    return w.toString();
  }
}

// @ts-ignore: decorator
@lazy const MISSING = new JsonValue(Kind.MISSING);
/** The shared missing value (what lookups answer when there is nothing). */
export function missing(): JsonValue { return MISSING; }

// ---- reading ---------------------------------------------------------------------------------

class Reader {
  constructor(public at: usize, public end: usize) {}
  ok: bool = true;

  peek(): u32 { return this.at < this.end ? <u32>load<u8>(this.at) : 0xFFFFFFFF; }
  space(): void {
    while (this.at < this.end) {
      const c = load<u8>(this.at);
      if (c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09) break;
      this.at++;
    }
  }
  fail(): JsonValue { this.ok = false; return MISSING; }
  literal(word: string): bool {
    const n = <usize>word.length;
    if (this.end - this.at < n) return false;
    for (let i: usize = 0; i < n; i++) if (<u32>load<u8>(this.at + i) != <u32>word.charCodeAt(<i32>i)) return false;
    this.at += n;
    return true;
  }

  value(depth: i32): JsonValue {
    this.space();
    const c = this.peek();
    if (c == 0x7B || c == 0x5B) {           // { or [
      if (depth >= MAX_DEPTH) return this.fail();
      const isObject = c == 0x7B;
      const v = new JsonValue(isObject ? Kind.OBJECT : Kind.ARRAY);
      const items = new Array<JsonValue>();
      v.items = items;
      this.at++;
      this.space();
      if (this.peek() == (isObject ? 0x7D : 0x5D)) { this.at++; return v; }
      while (true) {
        let key = "";
        if (isObject) {
          this.space();
          if (this.peek() != 0x22) return this.fail();
          const k = this.string();
          if (k === null) return this.fail();
          key = k;
          this.space();
          if (this.peek() != 0x3A) return this.fail();
          this.at++;
        }
        const item = this.value(depth + 1);
        if (!this.ok) return MISSING;
        item.key = key;
        items.push(item);
        this.space();
        const next = this.peek();
        this.at++;
        if (next == 0x2C) continue;
        if (next == (isObject ? 0x7D : 0x5D)) return v;
        return this.fail();
      }
    }
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return this.fail();
      const v = new JsonValue(Kind.STRING);
      v.str = s;
      return v;
    }
    if (c == 0x74 || c == 0x66) {           // true / false
      const v = new JsonValue(Kind.BOOL);
      v.bool = c == 0x74;
      return this.literal(v.bool ? "true" : "false") ? v : this.fail();
    }
    if (c == 0x6E) return this.literal("null") ? new JsonValue(Kind.NULL) : this.fail();
    if (c == 0x2D || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail();
  }

  digits(): usize {
    const start = this.at;
    while (this.at < this.end && load<u8>(this.at) >= 0x30 && load<u8>(this.at) <= 0x39) this.at++;
    return this.at - start;
  }

  number(): JsonValue {
    const start = this.at;
    const negative = this.peek() == 0x2D;
    if (negative) this.at++;
    const intStart = this.at;
    const intDigits = this.digits();
    if (!intDigits || (intDigits > 1 && load<u8>(intStart) == 0x30)) return this.fail();
    let integral = true;
    if (this.peek() == 0x2E) {
      this.at++;
      if (!this.digits()) return this.fail();
      integral = false;
    }
    if (this.peek() == 0x65 || this.peek() == 0x45) {
      this.at++;
      if (this.peek() == 0x2B || this.peek() == 0x2D) this.at++;
      if (!this.digits()) return this.fail();
      integral = false;
    }
    const v = new JsonValue(Kind.NUMBER);
    if (integral && intDigits <= 19) {
      let magnitude: u64 = 0;
      for (let p = intStart; p < this.at; p++) magnitude = magnitude * 10 + <u64>(load<u8>(p) - 0x30);
      if (magnitude <= (negative ? <u64>0x8000000000000000 : <u64>0x7FFFFFFFFFFFFFFF)) {
        v.isInt = true;
        v.int = negative ? <i64>(0 - magnitude) : <i64>magnitude;
        return v;
      }
    }
    v.num = this.decimal(start, negative);
    return v;
  }

  /** The number from `start` (checked already) as the nearest double. */
  decimal(start: usize, negative: bool): f64 {
    let digits = "";
    let exp = 0;
    let p = negative ? start + 1 : start;
    let fraction = false;
    for (; p < this.at; p++) {
      const c = <u32>load<u8>(p);
      if (c == 0x2E) { fraction = true; continue; }
      if (c == 0x65 || c == 0x45) break;
      if (digits.length == 0 && c == 0x30) { if (fraction) exp--; continue; } // leading zeros
      digits += String.fromCharCode(c);
      if (fraction) exp--;
    }
    if (p < this.at) { // the exponent
      p++;
      const sign = load<u8>(p) == 0x2D ? -1 : 1;
      if (load<u8>(p) == 0x2D || load<u8>(p) == 0x2B) p++;
      let e = 0;
      for (; p < this.at; p++) if (e < 100000) e = e * 10 + <i32>(load<u8>(p) - 0x30);
      exp += sign * e;
    }
    const magnitude = decimalToDouble(digits, exp);
    return negative ? -magnitude : magnitude;
  }

  hex4(): i32 {
    if (this.end - this.at < 4) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.at + <usize>i);
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) return -1;
      v = v << 4 | d;
    }
    this.at += 4;
    return v;
  }

  /** The string at a `"`, or null when it is not valid (bad escape, control character, bad UTF-8). */
  string(): string | null {
    this.at++;
    // At most one UTF-16 unit per input byte: allocate for the rest of the input, shrink after.
    let close = this.at;
    while (close < this.end && load<u8>(close) != 0x22) close += load<u8>(close) == 0x5C ? 2 : 1;
    if (close >= this.end) return null;
    const capacity = close - this.at;
    const out = __new(capacity << 1, idof<string>());
    let units: usize = 0;
    while (true) {
      // A run of plain ASCII, copied without the checks below.
      let p = this.at;
      while (p < close) {
        const b = <u32>load<u8>(p);
        if (b < 0x20 || b == 0x5C || b >= 0x80) break;
        store<u16>(out + (units++ << 1), <u16>b);
        p++;
      }
      this.at = p;
      if (this.at >= this.end) return null;
      let c = <u32>load<u8>(this.at);
      if (c == 0x22) { this.at++; break; }
      if (c < 0x20) return null;
      if (c == 0x5C) {
        this.at++;
        const e = this.peek();
        this.at++;
        if (e == 0x75) {                 // \uXXXX, a surrogate pair as two escapes
          const u = this.hex4();
          if (u < 0) return null;
          c = <u32>u;
          if (c >= 0xD800 && c < 0xDC00 && this.end - this.at >= 6 && load<u8>(this.at) == 0x5C && load<u8>(this.at + 1) == 0x75) {
            const save = this.at;
            this.at += 2;
            const low = this.hex4();
            if (low >= 0xDC00 && low < 0xE000) {
              store<u16>(out + (units++ << 1), <u16>c);
              store<u16>(out + (units++ << 1), <u16>low);
              continue;
            }
            this.at = save;
          }
          if (c >= 0xD800 && c < 0xE000) c = 0xFFFD; // a lone surrogate
        } else if (e == 0x22 || e == 0x5C || e == 0x2F) c = e;
        else if (e == 0x62) c = 0x08;
        else if (e == 0x66) c = 0x0C;
        else if (e == 0x6E) c = 0x0A;
        else if (e == 0x72) c = 0x0D;
        else if (e == 0x74) c = 0x09;
        else return null;
        store<u16>(out + (units++ << 1), <u16>c);
        continue;
      }
      if (c < 0x80) {
        this.at++;
        store<u16>(out + (units++ << 1), <u16>c);
        continue;
      }
      const n = utf8Length(this.at, this.end);
      if (!n) return null;
      let cp: u32 = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
      for (let i: usize = 1; i < n; i++) cp = cp << 6 | (<u32>load<u8>(this.at + i) & 0x3F);
      this.at += n;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        store<u16>(out + (units++ << 1), <u16>(0xD800 + (cp >> 10)));
        store<u16>(out + (units++ << 1), <u16>(0xDC00 + (cp & 0x3FF)));
      } else {
        store<u16>(out + (units++ << 1), <u16>cp);
      }
    }
    return changetype<string>(units == capacity ? out : __renew(out, units << 1));
  }
}

/** Length of the valid UTF-8 sequence (2-4 bytes) at `p`, or 0 when it is not one. */
function utf8Length(p: usize, end: usize): usize {
  const c = <u32>load<u8>(p);
  const k: usize = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (!k || end - p < k) return 0;
  const b = <u32>load<u8>(p + 1);
  if ((c == 0xE0 && b < 0xA0) || (c == 0xED && b > 0x9F) || (c == 0xF0 && b < 0x90) || (c == 0xF4 && b > 0x8F)) return 0;
  for (let i: usize = 1; i < k; i++) if ((<u32>load<u8>(p + i) & 0xC0) != 0x80) return 0;
  return k;
}

/** Parses `len` bytes of UTF-8 JSON at `ptr`; null when they are not one valid JSON value. */
export function parseBytes(ptr: usize, len: usize): JsonValue | null {
  const r = new Reader(ptr, ptr + len);
  const v = r.value(0);
  r.space();
  return r.ok && r.at == r.end ? v : null;
}

/** Parses JSON text; null when it is not one valid JSON value. */
export function parse(text: string): JsonValue | null {
  const bytes = String.UTF8.encode(text);
  return parseBytes(changetype<usize>(bytes), <usize>bytes.byteLength);
}

// ---- writing ---------------------------------------------------------------------------------

/** A growing UTF-8 byte buffer. */
export class Bytes {
  ptr: usize = 0;
  len: usize = 0;
  cap: usize = 0;

  room(n: usize): void {
    const need = this.len + n;
    if (need <= this.cap) return;
    let cap = max<usize>(this.cap << 1, max<usize>(need, 64));
    this.ptr = this.ptr ? __realloc(this.ptr, cap) : __alloc(cap);
    this.cap = cap;
  }
  byte(b: u32): void {
    this.room(1);
    store<u8>(this.ptr + this.len++, <u8>b);
  }
  ascii(s: string): void {
    const n = <usize>s.length;
    this.room(n);
    for (let i: usize = 0; i < n; i++) store<u8>(this.ptr + this.len + i, <u8>s.charCodeAt(<i32>i));
    this.len += n;
  }
  copy(ptr: usize, n: usize): void {
    this.room(n);
    memory.copy(this.ptr + this.len, ptr, n);
    this.len += n;
  }
  /** `s` as UTF-8, escaped for a JSON string when `escape`; a lone surrogate becomes U+FFFD. */
  text(s: string, escape: bool): void {
    const n = <usize>s.length;
    const units = changetype<usize>(s);
    this.room(n * 3);
    let out = this.ptr + this.len; // room for 3 bytes a unit; escapes make more room
    for (let i: usize = 0; i < n; i++) {
      let c = <u32>load<u16>(units + (i << 1));
      if (c < 0x80) {
        if (escape && (c < 0x20 || c == 0x22 || c == 0x5C)) {
          this.len = out - this.ptr;
          this.room(6 + (n - i) * 3);
          this.escape(c);
          out = this.ptr + this.len;
          continue;
        }
        store<u8>(out++, <u8>c);
        continue;
      }
      if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
        const low = <u32>load<u16>(units + ((i + 1) << 1));
        if (low >= 0xDC00 && low < 0xE000) {
          c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
          i++;
        }
      }
      if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
      if (c < 0x800) {
        store<u8>(out, <u8>(0xC0 | (c >> 6)));
        store<u8>(out + 1, <u8>(0x80 | (c & 63)));
        out += 2;
      } else if (c < 0x10000) {
        store<u8>(out, <u8>(0xE0 | (c >> 12)));
        store<u8>(out + 1, <u8>(0x80 | ((c >> 6) & 63)));
        store<u8>(out + 2, <u8>(0x80 | (c & 63)));
        out += 3;
      } else {
        store<u8>(out, <u8>(0xF0 | (c >> 18)));
        store<u8>(out + 1, <u8>(0x80 | ((c >> 12) & 63)));
        store<u8>(out + 2, <u8>(0x80 | ((c >> 6) & 63)));
        store<u8>(out + 3, <u8>(0x80 | (c & 63)));
        out += 4;
      }
    }
    this.len = out - this.ptr;
  }
  /** The JSON escape of the ASCII character `c` (room for 6 bytes is there). */
  private escape(c: u32): void {
    this.byte(0x5C);
    if (c == 0x22 || c == 0x5C) this.byte(c);
    else if (c == 0x0A) this.byte(0x6E);
    else if (c == 0x0D) this.byte(0x72);
    else if (c == 0x09) this.byte(0x74);
    else if (c == 0x08) this.byte(0x62);
    else if (c == 0x0C) this.byte(0x66);
    else {
      this.ascii("u00");
      this.byte("0123456789abcdef".charCodeAt(c >> 4));
      this.byte("0123456789abcdef".charCodeAt(c & 15));
    }
  }
  /** The packed (ptr << 32) | len of the bytes so far. */
  packed(): u64 { return (<u64>this.ptr << 32) | <u64>this.len; }
  toString(): string { return String.UTF8.decodeUnsafe(this.ptr, this.len); }
}

/** UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD). */
export function utf8(s: string): Bytes {
  const b = new Bytes();
  b.text(s, false);
  return b;
}

/** Writes JSON: open with obj()/arr(), close with end(); commas are inserted. Chains. */
export class JsonWriter {
  out: Bytes = new Bytes();
  private closers: u8[] = [];  // per open object/array: '}' or ']'
  private empty: bool[] = [];  // per open object/array: no member yet
  private afterKey: bool = false;

  private comma(): void {
    if (this.afterKey) { this.afterKey = false; return; }
    const depth = this.empty.length;
    if (depth == 0) return;
    if (unchecked(this.empty[depth - 1])) unchecked(this.empty[depth - 1] = false);
    else this.out.byte(0x2C);
  }
  private open(c: u32): JsonWriter {
    this.comma();
    if (this.closers.length >= MAX_WRITE_DEPTH) abortWith("trap", "JSON writer: nested deeper than 64");
    this.out.byte(c);
    this.closers.push(c == 0x7B ? 0x7D : 0x5D);
    this.empty.push(true);
    return this;
  }
  /** How many objects and arrays are open. */
  get depth(): i32 { return this.closers.length; }
  obj(): JsonWriter { return this.open(0x7B); }
  arr(): JsonWriter { return this.open(0x5B); }
  /** Closes the innermost object or array (nothing when none is open). */
  end(): JsonWriter {
    if (this.closers.length == 0) return this;
    this.out.byte(this.closers.pop());
    this.empty.pop();
    this.afterKey = false;
    return this;
  }
  key(k: string): JsonWriter {
    this.comma();
    this.out.byte(0x22);
    this.out.text(k, true);
    this.out.ascii("\":");
    this.afterKey = true;
    return this;
  }
  str(s: string): JsonWriter {
    this.comma();
    this.out.byte(0x22);
    this.out.text(s, true);
    this.out.byte(0x22);
    return this;
  }
  int(v: i64): JsonWriter {
    this.comma();
    this.out.ascii(v.toString());
    return this;
  }
  /** A double in its shortest round-trip form; integral values below 1e17 as integers; NaN and
   *  infinities as null. */
  num(v: f64): JsonWriter {
    if (!isFinite(v)) return this.null();
    if (v == Math.floor(v) && Math.abs(v) < 1e17) return this.int(<i64>v);
    this.comma();
    this.out.ascii(v.toString());
    return this;
  }
  bool(v: bool): JsonWriter {
    this.comma();
    this.out.ascii(v ? "true" : "false");
    return this;
  }
  null(): JsonWriter {
    this.comma();
    this.out.ascii("null");
    return this;
  }
  /** `json` as it is (it must be one valid JSON value). */
  raw(json: string): JsonWriter {
    this.comma();
    this.out.text(json, false);
    return this;
  }
  rawBytes(b: Bytes): JsonWriter {
    this.comma();
    this.out.copy(b.ptr, b.len);
    return this;
  }
  /** A parsed value (a missing one as null). */
  value(v: JsonValue): JsonWriter {
    const items = v.items;
    if (v.kind == Kind.OBJECT && items !== null) {
      this.obj();
      for (let i = 0; i < items.length; i++) this.key(unchecked(items[i]).key).value(unchecked(items[i]));
      return this.end();
    }
    if (v.kind == Kind.ARRAY && items !== null) {
      this.arr();
      for (let i = 0; i < items.length; i++) this.value(unchecked(items[i]));
      return this.end();
    }
    if (v.kind == Kind.STRING) return this.str(v.str);
    if (v.kind == Kind.BOOL) return this.bool(v.bool);
    if (v.kind == Kind.NUMBER) return v.isInt ? this.int(v.int) : this.num(v.num);
    return this.null();
  }
  kstr(k: string, s: string): JsonWriter { return this.key(k).str(s); }
  /** A string member, or null when `s` is null. */
  kstrOrNull(k: string, s: string | null): JsonWriter { return s !== null ? this.key(k).str(s) : this.key(k).null(); }
  kint(k: string, v: i64): JsonWriter { return this.key(k).int(v); }
  knum(k: string, v: f64): JsonWriter { return this.key(k).num(v); }
  kbool(k: string, v: bool): JsonWriter { return this.key(k).bool(v); }
  knull(k: string): JsonWriter { return this.key(k).null(); }
  kraw(k: string, json: string): JsonWriter { return this.key(k).raw(json); }
  kvalue(k: string, v: JsonValue): JsonWriter { return this.key(k).value(v); }
  kobj(k: string): JsonWriter { return this.key(k).obj(); }
  karr(k: string): JsonWriter { return this.key(k).arr(); }
  /** Closes everything still open. */
  close(): JsonWriter {
    while (this.closers.length) this.end();
    return this;
  }
  /** The text so far. */
  toString(): string { return this.out.toString(); }
}
