//! JSON in and out: a parsed `Value` with accessors that give safe defaults on a missing value or
//! a type mismatch (so lookups chain), and `Writer`, which inserts commas itself.

use std::fmt::Write as _;

/// Nesting the reader accepts; the writer allows 64.
pub const MAX_DEPTH: usize = 32;
const MAX_WRITE_DEPTH: usize = 64;

/// A parsed JSON value. Integers that fit 64 bits stay exact in `Int`; object members keep
/// their order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// What `get` and `at` give for no such member (the parser never makes one).
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

/// The type of a value (Missing: no such member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Missing,
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

static MISSING: Value = Value::Missing;

/// Reading: every accessor gives `def` when the type does not match, and `get`/`at` give
/// `Missing` for no such member, so lookups chain: `ctx.context.get("agent").get("name").str_or("")`.
impl Value {
    pub fn kind(&self) -> Type {
        match self {
            Value::Missing => Type::Missing,
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) | Value::Num(_) => Type::Number,
            Value::Str(_) => Type::String,
            Value::Arr(_) => Type::Array,
            Value::Obj(_) => Type::Object,
        }
    }
    /// The member `key` of an object, else Missing.
    pub fn get(&self, key: &str) -> &Value {
        match self {
            Value::Obj(members) => members.iter().find(|(k, _)| k == key).map_or(&MISSING, |(_, v)| v),
            _ => &MISSING,
        }
    }
    /// Element `i` of an array, else Missing.
    pub fn at(&self, i: usize) -> &Value {
        match self {
            Value::Arr(items) => items.get(i).unwrap_or(&MISSING),
            _ => &MISSING,
        }
    }
    /// Members of an array or object, bytes of a string, else 0.
    pub fn len(&self) -> usize {
        match self {
            Value::Arr(items) => items.len(),
            Value::Obj(members) => members.len(),
            Value::Str(s) => s.len(),
            _ => 0,
        }
    }
    /// Whether `len()` is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The string, or None for any other type.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn str_or<'a>(&'a self, def: &'a str) -> &'a str {
        self.as_str().unwrap_or(def)
    }
    /// Integers exactly; an integral double within 64 bits is converted.
    pub fn int_or(&self, def: i64) -> i64 {
        match self {
            Value::Int(i) => *i,
            Value::Num(d) if *d >= -9.223372036854776e18 && *d < 9.223372036854776e18
                && *d == (*d as i64) as f64 => *d as i64,
            _ => def,
        }
    }
    pub fn num_or(&self, def: f64) -> f64 {
        match self {
            Value::Int(i) => *i as f64,
            Value::Num(d) => *d,
            _ => def,
        }
    }
    pub fn bool_or(&self, def: bool) -> bool {
        match self {
            Value::Bool(b) => *b,
            _ => def,
        }
    }
    /// Missing or null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Missing | Value::Null)
    }
    /// Array elements in order (empty for anything else).
    pub fn items(&self) -> std::slice::Iter<'_, Value> {
        match self {
            Value::Arr(items) => items.iter(),
            _ => [].iter(),
        }
    }
    /// Object members in order (empty for anything else).
    pub fn members(&self) -> std::slice::Iter<'_, (String, Value)> {
        match self {
            Value::Obj(members) => members.iter(),
            _ => [].iter(),
        }
    }
    /// Compact JSON text ("null" when missing).
    pub fn to_json(&self) -> String {
        let mut w = Writer::new();
        w.json(self);
        w.finish()
    }
}

// ---- reader --------------------------------------------------------------------------------

/// Parse UTF-8 JSON text; None when it is not JSON or is nested deeper than MAX_DEPTH.
pub fn parse(text: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(text).ok()?;
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i == p.s.len() { Some(v) } else { None }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn value(&mut self, depth: usize) -> Option<Value> {
        self.ws();
        match self.peek()? {
            c @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                let obj = c == b'{';
                let close = if obj { b'}' } else { b']' };
                let (mut members, mut items) = (Vec::new(), Vec::new());
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                } else {
                    loop {
                        if obj {
                            self.ws();
                            if self.peek()? != b'"' {
                                return None;
                            }
                            let key = self.string()?;
                            self.ws();
                            if self.peek()? != b':' {
                                return None;
                            }
                            self.i += 1;
                            members.push((key, self.value(depth + 1)?));
                        } else {
                            items.push(self.value(depth + 1)?);
                        }
                        self.ws();
                        let c = self.peek()?;
                        self.i += 1;
                        if c == b',' {
                            continue;
                        }
                        if c != close {
                            return None;
                        }
                        break;
                    }
                }
                Some(if obj { Value::Obj(members) } else { Value::Arr(items) })
            }
            b'"' => self.string().map(Value::Str),
            b't' => self.word("true", Value::Bool(true)),
            b'f' => self.word("false", Value::Bool(false)),
            b'n' => self.word("null", Value::Null),
            _ => self.number(),
        }
    }
    fn word(&mut self, word: &str, v: Value) -> Option<Value> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let mut v = 0;
        for &c in digits {
            v = v << 4 | (c as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\' | 0..=0x1f) {
                self.i += 1;
            }
            // SAFETY: `parse` checked that the whole text is UTF-8, and a run starts and stops
            // at ASCII bytes, so it is whole characters.
            out.push_str(unsafe { std::str::from_utf8_unchecked(&self.s[start..self.i]) });
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.s.get(self.i + 1)?;
                    self.i += 2;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let mut cp = hi;
                            if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                match self.hex4() {
                                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                        cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    }
                                    _ => self.i = save,
                                }
                            }
                            char::from_u32(cp).unwrap_or('\u{fffd}') // a lone surrogate
                        }
                        _ => return None,
                    };
                    out.push(c);
                }
                _ => return None, // a control character
            }
        }
    }
    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.peek().map_or(false, |c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let first = self.peek()?;
        let n = digits(self);
        if n == 0 || (first == b'0' && n > 1) {
            return None;
        }
        let mut exact = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            exact = false;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            exact = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if exact {
            if let Ok(i) = text.parse::<i64>() {
                return Some(Value::Int(i));
            }
        }
        text.parse::<f64>().ok().map(Value::Num)
    }
}

// ---- writer --------------------------------------------------------------------------------

/// A compact JSON writer: open with `obj`/`arr`, close with `end`, `key` before each member.
/// Strings are escaped (quotes, backslash, control characters); NaN and infinities are null.
#[derive(Default)]
pub struct Writer {
    out: String,
    open: Vec<(bool, bool)>, // (is an object, has a member yet)
    after_key: bool,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    /// The text so far with every open object and array closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
    /// The text so far (possibly unfinished).
    pub fn as_str(&self) -> &str {
        &self.out
    }
    fn sep(&mut self) {
        if self.after_key {
            self.after_key = false;
        } else if let Some(top) = self.open.last_mut() {
            if top.1 {
                self.out.push(',');
            }
            top.1 = true;
        }
    }
    fn open(&mut self, c: char, obj: bool) -> &mut Self {
        self.sep();
        if self.open.len() >= MAX_WRITE_DEPTH {
            crate::fail("JSON writer: nested deeper than 64");
        }
        self.out.push(c);
        self.open.push((obj, false));
        self
    }
    pub fn obj(&mut self) -> &mut Self {
        self.open('{', true)
    }
    pub fn arr(&mut self) -> &mut Self {
        self.open('[', false)
    }
    pub fn end(&mut self) -> &mut Self {
        match self.open.pop() {
            Some((obj, _)) => self.out.push(if obj { '}' } else { ']' }),
            None => crate::fail("JSON writer: end without an open object or array"),
        }
        self
    }
    pub fn key(&mut self, key: &str) -> &mut Self {
        self.str(key);
        self.out.push(':');
        self.after_key = true;
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        escape(&mut self.out, s);
        self
    }
    /// A string, or null for None.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{}", v);
        self
    }
    pub fn num(&mut self, v: f64) -> &mut Self {
        self.sep();
        put_double(&mut self.out, v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.out.push_str(if v { "true" } else { "false" });
        self
    }
    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.push_str("null");
        self
    }
    /// JSON text as it is (the caller vouches that it is one JSON value).
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.sep();
        self.out.push_str(json);
        self
    }
    /// A parsed value (null when missing).
    pub fn json(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Missing | Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::Num(d) => self.num(*d),
            Value::Str(s) => self.str(s),
            Value::Arr(items) => {
                self.arr();
                for item in items {
                    self.json(item);
                }
                self.end()
            }
            Value::Obj(members) => {
                self.obj();
                for (k, v) in members {
                    self.key(k).json(v);
                }
                self.end()
            }
        }
    }
    pub fn kstr(&mut self, k: &str, s: &str) -> &mut Self {
        self.key(k).str(s)
    }
    pub fn kint(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k).int(v)
    }
    pub fn knum(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k).num(v)
    }
    pub fn kbool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k).bool(v)
    }
    pub fn knull(&mut self, k: &str) -> &mut Self {
        self.key(k).null()
    }
    pub fn kraw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).raw(json)
    }
    pub fn kjson(&mut self, k: &str, v: &Value) -> &mut Self {
        self.key(k).json(v)
    }
    pub fn kobj(&mut self, k: &str) -> &mut Self {
        self.key(k).obj()
    }
    pub fn karr(&mut self, k: &str) -> &mut Self {
        self.key(k).arr()
    }
}

/// `s` as a quoted JSON string, as the C library writes it.
pub(crate) fn escape(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.bytes().enumerate() {
        let e = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            8 => "\\b",
            12 => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if e.is_empty() {
            let _ = write!(out, "\\u{:04x}", c);
        } else {
            out.push_str(e);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// The shortest digits that read back as `x`: integral values below 1e17 as integers, plain
/// decimals for exponents -5..16, else d.ddde±N; NaN and infinities are null.
fn put_double(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    if x.abs() < 1e17 && x == x.trunc() {
        let _ = write!(out, "{}", x as i64);
        return;
    }
    let sci = format!("{:e}", x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    out.push_str(sign);
    let n = digits.len() as i32;
    if (-5..17).contains(&e) {
        if e < 0 {
            out.push_str("0.");
            for _ in 0..(-e - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if n > e + 1 {
            out.push_str(&digits[..(e + 1) as usize]);
            out.push('.');
            out.push_str(&digits[(e + 1) as usize..]);
        } else {
            out.push_str(&digits);
            for _ in n..e + 1 {
                out.push('0');
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}", e);
    }
}
