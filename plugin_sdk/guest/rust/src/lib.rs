//! cms_plugin: the Rust guest library of the CMS plugin SDK (ABI v1, docs/plugin-abi.md).
//!
//! Plain std for wasm32-unknown-unknown, no crates from outside. The crate defines the exports
//! `cms_alloc` and `cms_abi_version`; `cms_plugin::actions!` defines `cms_handle` over the
//! plugin's action table:
//!
//! ```ignore
//! use cms_plugin::{Ctx, Tone};
//! fn greet(ctx: &mut Ctx) {
//!     let name = ctx.param("name").str_or("").trim().to_string();
//!     if name.is_empty() { return ctx.error("bad_name", "Name must not be empty"); }
//!     ctx.alert(&format!("Hello, {}!", name), Tone::Success);
//! }
//! cms_plugin::actions!(greet);
//! ```
//!
//! An unknown action answers `{"ok":false,"error":{"code":"unknown_action",...}}`, an input that
//! is not an ABI v1 envelope `bad_input`. Memory is a bump arena that is never freed (every call
//! runs in a fresh instance): an allocation that cannot be met ends the call with fault
//! `memory_limit` ("out of memory allocating N bytes"); a panic or `ctx.fail(msg)` ends it with
//! `trap` and the message, through the ABI's `abort` op, then a wasm trap.

pub mod json;
mod ui;

pub use json::{parse, Type, Value, Writer};
pub use ui::{Button, Cell, Event, Field, Form, Kind, Style, Tone};

use std::alloc::{GlobalAlloc, Layout};

// ---- host imports, the arena, the exports ----------------------------------------------------

#[link(wasm_import_module = "cms")]
extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: usize);
    #[link_name = "call"]
    fn host_call(ptr: *const u8, len: usize) -> u64;
}

extern "C" {
    static __heap_base: u8; // first byte after data and stack (wasm-ld)
}

static mut TOP: usize = 0; // next free byte of the arena
static mut LAST: usize = 0; // start of the last allocation (it may grow in place)

/// Memory up to `end` exists (grown if needed).
fn reserve(end: usize) -> bool {
    let have = core::arch::wasm32::memory_size(0) << 16;
    end <= have || core::arch::wasm32::memory_grow(0, (end - have + 0xFFFF) >> 16) != usize::MAX
}

/// `n` bytes aligned to `align` (a power of two), or null when memory cannot grow.
fn bump(n: usize, align: usize) -> *mut u8 {
    unsafe {
        if TOP == 0 {
            TOP = &__heap_base as *const u8 as usize;
        }
        let p = (TOP + align - 1) & !(align - 1);
        match p.checked_add(n) {
            Some(end) if reserve(end) => {
                TOP = end;
                LAST = p;
                p as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }
}

struct Arena;

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = bump(layout.size(), layout.align().max(8));
        if p.is_null() {
            abort_oom(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let at = ptr as usize;
        if at == LAST && at + layout.size() == TOP {
            if size <= layout.size() || reserve(at + size) {
                TOP = at + size.max(layout.size()); // the last allocation grows in place
                return ptr;
            }
            abort_oom(size);
        }
        let fresh = self.alloc(Layout::from_size_align_unchecked(size, layout.align()));
        core::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(size));
        fresh
    }
}

#[global_allocator]
static ARENA: Arena = Arena;

/// The host's allocator (for the input and host answers): 0 when memory is exhausted.
#[no_mangle]
pub extern "C" fn cms_alloc(n: usize) -> *mut u8 {
    bump(n, 8)
}

#[no_mangle]
pub extern "C" fn cms_abi_version() -> i32 {
    1
}

// ---- the clean give-up (the ABI's abort op): a static request, no allocation -----------------

struct Fixed {
    buf: [u8; 600],
    len: usize,
}

static mut ABORT_REQUEST: Fixed = Fixed { buf: [0; 600], len: 0 };

impl Fixed {
    fn put(&mut self, s: &[u8]) {
        let room = self.buf.len() - 4 - self.len; // keep room for "\"}}"
        let mut n = s.len().min(room);
        while n < s.len() && n > 0 && s[n] & 0xC0 == 0x80 {
            n -= 1; // whole UTF-8 characters only
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn put_escaped(&mut self, s: &str) {
        for c in s.chars() {
            let mut tmp = [0u8; 6];
            let bytes: &[u8] = match c {
                '"' => b"\\\"",
                '\\' => b"\\\\",
                '\n' => b"\\n",
                c if (c as u32) < 0x20 => {
                    tmp.copy_from_slice(b"\\u0000");
                    tmp[4] = b"0123456789abcdef"[(c as usize) >> 4];
                    tmp[5] = b"0123456789abcdef"[(c as usize) & 15];
                    &tmp
                }
                c => c.encode_utf8(&mut tmp).as_bytes(),
            };
            if self.len + bytes.len() + 4 > self.buf.len() {
                return;
            }
            self.put(bytes);
        }
    }
    fn put_u64(&mut self, mut v: u64) {
        let mut t = [0u8; 20];
        let mut i = t.len();
        loop {
            i -= 1;
            t[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&t[i..]);
    }
}

/// Ends the call with fault `kind` ("memory_limit" or "trap"): `message`, or for memory
/// "out of memory allocating N bytes". Never returns.
fn abort(kind: &str, message: Option<&str>, bytes: usize) -> ! {
    unsafe {
        let req = &mut *core::ptr::addr_of_mut!(ABORT_REQUEST);
        req.len = 0;
        req.put(b"{\"op\":\"abort\",\"args\":{\"kind\":\"");
        req.put(kind.as_bytes());
        req.put(b"\",\"message\":\"");
        match message {
            Some(m) => req.put_escaped(m),
            None => {
                req.put(b"out of memory allocating ");
                req.put_u64(bytes as u64);
                req.put(b" bytes");
            }
        }
        let end = req.len;
        req.buf[end..end + 3].copy_from_slice(b"\"}}");
        host_call(req.buf.as_ptr(), end + 3); // ends the call
        core::arch::wasm32::unreachable()
    }
}

fn abort_oom(bytes: usize) -> ! {
    abort("memory_limit", None, bytes)
}

/// Give up: fault `trap` with `message`.
pub fn fail(message: &str) -> ! {
    abort("trap", Some(message), 0)
}

fn on_panic(info: &std::panic::PanicInfo<'_>) {
    let payload = info.payload();
    let text = payload.downcast_ref::<&str>().copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic");
    match info.location() {
        Some(at) => fail(&format!("panic: {} at {}:{}", text, at.file(), at.line())),
        None => fail(&format!("panic: {}", text)),
    }
}

// ---- the call ------------------------------------------------------------------------------

/// Log levels of `cms.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Where a kv key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Plugin,
    Agent,
    Client,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Plugin => "plugin",
            Scope::Agent => "agent",
            Scope::Client => "client",
        }
    }
}

/// A host call that answered an error (`unavailable`, `timeout`, `not_found`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub code: String,
    pub message: String,
}

/// One call: the envelope in, the answer being built.
pub struct Ctx {
    /// The action's name.
    pub action: String,
    /// Its params: an object.
    pub params: Value,
    /// Who calls: {"agent": {...}, "client": {...}, "slot": ..., "now": ...}: an object.
    pub context: Value,
    result: Option<String>,
    pub(crate) ui: Vec<String>,
    error: Option<(String, String)>,
    host_error: Option<String>,
}

impl Ctx {
    /// `params[key]`.
    pub fn param(&self, key: &str) -> &Value {
        self.params.get(key)
    }
    /// Set the result from JSON text (one value), replacing any earlier one.
    pub fn result_json(&mut self, json: String) {
        self.result = Some(json);
    }
    /// Set the result from a writer's text.
    pub fn result(&mut self, writer: Writer) {
        self.result = Some(writer.finish());
    }
    /// Answer {"ok":false,"error":{code, message}} instead (result and UI dropped).
    pub fn error(&mut self, code: &str, message: &str) {
        self.error = Some((code.to_string(), message.to_string()));
    }
    /// Give up: fault `trap` with `message`.
    pub fn fail(&self, message: &str) -> ! {
        fail(message)
    }
    /// A line in the plugin log; needs capability "log".
    pub fn log(&self, level: Level, message: &str) {
        unsafe { host_log(level as i32, message.as_ptr(), message.len()) }
    }
    /// Code of the last failed host call, None if it succeeded.
    pub fn host_error(&self) -> Option<&str> {
        self.host_error.as_deref()
    }
    /// Host op `op` with `args` (JSON text of an object; "" is {}): its result (null when the
    /// answer has none), or the error it answered. A missing capability is a fault, not an answer.
    pub fn call(&mut self, op: &str, args: &str) -> Result<Value, HostError> {
        let mut req = Writer::new();
        req.obj().kstr("op", op).kraw("args", if args.is_empty() { "{}" } else { args });
        let req = req.finish();
        let packed = unsafe { host_call(req.as_ptr(), req.len()) };
        let (ptr, len) = ((packed >> 32) as usize, packed as u32 as usize);
        let bytes = if ptr == 0 { &[][..] } else { unsafe { core::slice::from_raw_parts(ptr as *const u8, len) } };
        let answer = match parse(bytes) {
            Some(v @ Value::Obj(_)) => v,
            _ => Value::Null,
        };
        let outcome = if answer.kind() != Type::Object {
            Err(HostError { code: "bad_answer".into(), message: "the host's answer is not a JSON object".into() })
        } else if answer.get("ok").bool_or(false) {
            Ok(match answer.get("result") {
                Value::Missing => Value::Null,
                v => v.clone(),
            })
        } else {
            let error = answer.get("error");
            Err(HostError { code: error.get("code").str_or("bad_answer").to_string(),
                            message: error.get("message").str_or("").to_string() })
        };
        self.host_error = outcome.as_ref().err().map(|e| e.code.clone());
        outcome
    }
    /// `op` comes NUL-delimited ("\0kv.get\0") so that `cms-plugin check` finds the op names
    /// in the module (rustc packs string literals together).
    fn kv(&mut self, op: &'static str, name: &str, key: &str, scope: Option<Scope>, value: Option<&str>)
          -> Result<Value, HostError> {
        let mut args = Writer::new();
        args.obj().kstr(name, key);
        if let Some(scope) = scope {
            args.kstr("scope", scope.name());
        }
        if let Some(value) = value {
            args.kraw("value", value);
        }
        let args = args.finish();
        self.call(&op[1..op.len() - 1], &args)
    }
    /// The value at `key` (Null when unset); scope None is the host's default ("agent").
    pub fn kv_get(&mut self, key: &str, scope: Option<Scope>) -> Result<Value, HostError> {
        self.kv("\0kv.get\0", "key", key, scope, None)
            .map(|r| match r.get("value") {
                Value::Missing => Value::Null,
                v => v.clone(),
            })
    }
    /// Store `value_json` (JSON text) at `key`.
    pub fn kv_set(&mut self, key: &str, scope: Option<Scope>, value_json: &str) -> Result<(), HostError> {
        self.kv("\0kv.set\0", "key", key, scope, Some(value_json)).map(|_| ())
    }
    pub fn kv_delete(&mut self, key: &str, scope: Option<Scope>) -> Result<(), HostError> {
        self.kv("\0kv.delete\0", "key", key, scope, None).map(|_| ())
    }
    /// The keys starting with `prefix`.
    pub fn kv_list(&mut self, prefix: &str, scope: Option<Scope>) -> Result<Vec<String>, HostError> {
        self.kv("\0kv.list\0", "prefix", prefix, scope, None).map(|r| {
            r.get("keys").items().filter_map(|k| match k { Value::Str(s) => Some(s.clone()), _ => None }).collect()
        })
    }

    fn answer(self) -> String {
        let mut out = Writer::new();
        out.obj();
        match self.error {
            Some((code, message)) => {
                out.kbool("ok", false).kobj("error").kstr("code", &code).kstr("message", &message).end();
            }
            None => {
                out.kbool("ok", true);
                if let Some(result) = self.result.filter(|r| !r.is_empty()) {
                    out.kraw("result", &result);
                }
                if !self.ui.is_empty() {
                    out.karr("ui");
                    for block in &self.ui {
                        out.raw(block);
                    }
                    out.end();
                }
            }
        }
        out.finish()
    }
}

/// An action: reads `ctx`, writes its answer into it.
pub type Action = fn(&mut Ctx);

/// `cms_handle` over `actions` (what `actions!` expands to): the packed output.
pub fn dispatch(input: *const u8, len: usize, actions: &[(&str, Action)]) -> u64 {
    std::panic::set_hook(Box::new(on_panic));
    let bytes = if input.is_null() { &[][..] } else { unsafe { core::slice::from_raw_parts(input, len) } };
    let env = parse(bytes);
    let mut ctx = Ctx { action: String::new(), params: Value::Obj(Vec::new()), context: Value::Obj(Vec::new()),
                        result: None, ui: Vec::new(), error: None, host_error: None };
    let envelope = env.as_ref().unwrap_or(&Value::Missing);
    let ok = envelope.kind() == Type::Object && envelope.get("abi").int_or(0) == 1
        && envelope.get("action").kind() == Type::String && envelope.get("action").len() > 0
        && matches!(envelope.get("params").kind(), Type::Missing | Type::Object)
        && matches!(envelope.get("context").kind(), Type::Missing | Type::Object);
    if !ok {
        ctx.error("bad_input", "the input is not an ABI v1 envelope \
                                {\"abi\":1,\"action\":...,\"params\":{...},\"context\":{...}}");
    } else if let Some(Value::Obj(members)) = env {
        for (key, value) in members {
            match (key.as_str(), value) {
                ("action", Value::Str(s)) => ctx.action = s,
                ("params", v) => ctx.params = v,
                ("context", v) => ctx.context = v,
                _ => {}
            }
        }
        match actions.iter().find(|(name, _)| *name == ctx.action) {
            Some((_, action)) => action(&mut ctx),
            None => {
                let message = format!("this plugin has no action \"{}\"", ctx.action);
                ctx.error("unknown_action", &message);
            }
        }
    }
    let out = ctx.answer().into_bytes();
    let packed = (out.as_ptr() as u64) << 32 | out.len() as u64;
    core::mem::forget(out);
    packed
}

/// `actions!(name, ...)` or `actions!("name" => function, ...)`: defines `cms_handle` over the
/// plugin's actions. The names match [actions.*] in plugin.toml.
#[macro_export]
macro_rules! actions {
    ($($fn:ident),+ $(,)?) => {
        $crate::actions!($(stringify!($fn) => $fn),+);
    };
    ($($name:expr => $fn:path),+ $(,)?) => {
        #[no_mangle]
        pub extern "C" fn cms_handle(input: *const u8, len: usize) -> u64 {
            $crate::dispatch(input, len, &[$(($name, $fn as $crate::Action)),+])
        }
    };
}
