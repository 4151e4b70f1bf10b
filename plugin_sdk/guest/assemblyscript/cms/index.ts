// cms: the AssemblyScript guest library of the CMS plugin SDK (ABI v1, docs/plugin-abi.md).
//
// `cms-plugin build` finds it: a plugin imports it as "cms" and needs no npm install.
//
//   import { Ctx, Action, handle } from "cms";
//   export { cms_alloc, cms_abi_version } from "cms";
//
//   function greet(ctx: Ctx): void {
//     const name = ctx.param("name").asString().trim();
//     if (name.length == 0) { ctx.error("bad_name", "Name must not be empty"); return; }
//     ctx.ui.alert(`Hello, ${name}!`, "success");
//   }
//   export function cms_handle(ptr: usize, len: usize): u64 {
//     return handle(ptr, len, [new Action("greet", greet)]);
//   }
//
// An unknown action answers {"ok":false,"error":{"code":"unknown_action",...}}, an input that is
// not an ABI v1 envelope {"ok":false,"error":{"code":"bad_input",...}}. Strings are
// AssemblyScript's (UTF-16); the library converts to and from the ABI's UTF-8 (a lone surrogate
// becomes U+FFFD).
//
// Memory: every call runs in a fresh instance, so nothing is ever freed. Running out of memory
// ends the call with fault memory_limit ("out of memory allocating N bytes"); a `throw`, a failed
// assertion or ctx.fail(message) ends it with fault trap and the message.
//
// Reading JSON: ctx.params, ctx.context and parse(text) give JsonValues whose accessors never fail:
//   v.get(key) v.at(i) v.children v.length v.exists v.isNull v.isString v.isNumber v.isArray
//   v.isObject v.asString(def) v.asInt(def) v.asNumber(def) v.asBool(def) v.stringify() v.key
//   (a missing member or a wrong type gives the default, so lookups chain:
//   ctx.context.get("agent").get("name").asString("?")).
// Writing JSON: new JsonWriter(), then obj() arr() end() key(k) str(s) int(i) num(d) bool(b)
//   null() raw(json) value(v) and kstr kint knum kbool knull kraw kvalue kobj karr (key + value);
//   they chain. Strings are escaped; NaN and infinities are written as null.
//
// The call, ctx: Ctx:
//   ctx.action ctx.params ctx.context ctx.param(key)
//   ctx.result(): JsonWriter    write the result (one JSON value); ctx.resultJson(text)
//   ctx.error(code, message)    answer {"ok":false,"error":{...}} instead (result and UI dropped)
//   ctx.fail(message)           give up: fault "trap" with the message
//   ctx.log(level, message), ctx.debug/info/warn/logError(message)   needs capability "log"
//   ctx.ui                      the UI blocks (see ui.ts): heading text alert badge link timer
//                               keyValue+pair list+item terminal+line timeline+event
//                               table+row+cell* form+field+button blockJson
//
// Host calls (capabilities in plugin.toml; a missing one is a fault, not an answer):
//   ctx.call(op, argsJson): HostAnswer   .ok .code (null when ok; HostError.*) .message .result
//                                        .transient (unavailable or timeout: degrade and go on)
//   ctx.hostError                        code of the last failed host call, null if it succeeded
//   kv (scope "plugin", "agent" or "client"; null = the host's default, "agent"):
//   ctx.kvGet(key, scope): JsonValue | null   the value (a null value when unset), null on an
//                                             error answer (unavailable, timeout, ...)
//   ctx.kvSet(key, scope, valueJson): bool    ctx.kvDelete(key, scope): bool
//   ctx.kvList(prefix, scope): JsonValue | null   an array of keys
import { hostCall, hostLog, abortWith } from "./abort";
import { Bytes, JsonValue, JsonWriter, Kind, missing, parseBytes, utf8 } from "./json";
import { tryAlloc } from "./alloc";
import { Ui } from "./ui";

export { JsonValue, JsonWriter, Kind, parse, missing, utf8, Bytes, MAX_DEPTH } from "./json";
export { Ui, Field, Button, Option } from "./ui";
export { abortWith } from "./abort";

export const DEBUG = 0;
export const INFO = 1;
export const WARN = 2;
export const ERROR = 3;

/** The host's allocator (for the input and for host answers): 0 when memory is exhausted. */
export function cms_alloc(n: usize): usize { return tryAlloc(n); }
export function cms_abi_version(): i32 { return 1; }

/** Error codes of host answers (docs/plugin-abi.md); ops add their own (for example "not_found"). */
export namespace HostError {
  export const BAD_REQUEST = "bad_request";
  export const UNKNOWN_OP = "unknown_op";
  export const UNAVAILABLE = "unavailable";
  export const TIMEOUT = "timeout";
  export const TOO_LARGE = "too_large";
  /** The host's answer was not a JSON object (the library's own code). */
  export const BAD_ANSWER = "bad_answer";
}

/** A host op's answer: `result` when ok, else the error `code` and `message`. */
export class HostAnswer {
  constructor(public ok: bool, public code: string | null, public message: string,
              public result: JsonValue) {}
  /** The host's trouble, not the plugin's (unavailable or timeout): degrade and go on. */
  get transient(): bool {
    const code = this.code;
    return code !== null && (code == HostError.UNAVAILABLE || code == HostError.TIMEOUT);
  }
}

/** One plugin call: the envelope, the answer being built, and the host. */
export class Ctx {
  ui: Ui = new Ui();
  hostError: string | null = null;
  private resultWriter: JsonWriter | null = null;
  private errorCode: string | null = null;
  private errorMessage: string = "";

  constructor(public action: string, public params: JsonValue, public context: JsonValue) {}

  param(key: string): JsonValue { return this.params.get(key); }
  /** A fresh writer for the result (it replaces an earlier one). */
  result(): JsonWriter {
    const w = new JsonWriter();
    this.resultWriter = w;
    return w;
  }
  resultJson(json: string): void { this.result().raw(json); }
  error(code: string, message: string): void {
    this.errorCode = code;
    this.errorMessage = message;
  }
  fail(message: string): void { abortWith("trap", message); }

  log(level: i32, message: string): void {
    const b = utf8(message);
    hostLog(level, b.ptr, b.len);
  }
  debug(message: string): void { this.log(DEBUG, message); }
  info(message: string): void { this.log(INFO, message); }
  warn(message: string): void { this.log(WARN, message); }
  logError(message: string): void { this.log(ERROR, message); }

  /** Calls host op `op` with `argsJson` (an object as JSON text; null = {}). */
  call(op: string, argsJson: string | null = null): HostAnswer {
    const req = new JsonWriter().obj().kstr("op", op).kraw("args", argsJson !== null ? argsJson : "{}").end();
    const packed = hostCall(req.out.ptr, req.out.len);
    const parsed = parseBytes(<usize>(packed >>> 32), <usize>(packed & 0xFFFFFFFF));
    let answer: HostAnswer;
    if (parsed === null || parsed.kind != Kind.OBJECT) {
      answer = new HostAnswer(false, HostError.BAD_ANSWER, "the host's answer is not a JSON object", missing());
    } else if (parsed.get("ok").asBool(false)) {
      answer = new HostAnswer(true, null, "", parsed.get("result"));
    } else {
      const error = parsed.get("error");
      answer = new HostAnswer(false, error.get("code").asString(HostError.BAD_ANSWER),
                              error.get("message").asString(""), missing());
    }
    this.hostError = answer.code;
    return answer;
  }

  private kv(op: string, name: string, key: string, scope: string | null, valueJson: string | null): JsonValue | null {
    const args = new JsonWriter().obj().kstr(name, key);
    if (scope !== null) args.kstr("scope", scope);
    if (valueJson !== null) args.kraw("value", valueJson);
    const answer = this.call(op, args.end().toString());
    if (!answer.ok) return null;
    return answer.result.exists ? answer.result : new JsonValue(Kind.NULL);
  }
  kvGet(key: string, scope: string | null = null): JsonValue | null {
    const result = this.kv("kv.get", "key", key, scope, null);
    if (result === null) return null;
    const value = result.get("value");
    return value.exists ? value : new JsonValue(Kind.NULL);
  }
  kvSet(key: string, scope: string | null, valueJson: string | null): bool {
    return this.kv("kv.set", "key", key, scope, valueJson !== null ? valueJson : "null") !== null;
  }
  kvDelete(key: string, scope: string | null = null): bool {
    return this.kv("kv.delete", "key", key, scope, null) !== null;
  }
  kvList(prefix: string, scope: string | null = null): JsonValue | null {
    const result = this.kv("kv.list", "prefix", prefix, scope, null);
    if (result === null) return null;
    const keys = result.get("keys");
    if (keys.exists) return keys;
    const empty = new JsonValue(Kind.ARRAY);
    empty.items = [];
    return empty;
  }

  /** The output envelope, packed for cms_handle. */
  answer(): u64 {
    const out = new JsonWriter().obj();
    const code = this.errorCode;
    if (code !== null) {
      out.kbool("ok", false).kobj("error").kstr("code", code).kstr("message", this.errorMessage).end();
    } else {
      out.kbool("ok", true);
      const result = this.resultWriter;
      if (result !== null && result.out.len) out.key("result").rawBytes(result.close().out);
      if (!this.ui.isEmpty) {
        this.ui.end();
        out.key("ui").rawBytes(this.ui.w.close().out);
      }
    }
    return out.end().out.packed();
  }
}

type ActionFn = (ctx: Ctx) => void;

/** An action name and the function that handles it. */
export class Action {
  constructor(public name: string, public fn: ActionFn) {}
}

/** cms_handle over an action table: parses the envelope, runs the action, answers. */
export function handle(ptr: usize, len: usize, actions: Action[]): u64 {
  const env = parseBytes(ptr, len);
  const empty = new JsonValue(Kind.OBJECT);
  empty.items = [];
  if (env === null || env.kind != Kind.OBJECT || env.get("abi").asInt(0) != 1
      || !env.get("action").isString || env.get("action").length == 0
      || (env.get("params").exists && !env.get("params").isObject)
      || (env.get("context").exists && !env.get("context").isObject)) {
    const ctx = new Ctx("", empty, empty);
    ctx.error("bad_input", "the input is not an ABI v1 envelope "
                           + "{\"abi\":1,\"action\":...,\"params\":{...},\"context\":{...}}");
    return ctx.answer();
  }
  const params = env.get("params"), context = env.get("context");
  const ctx = new Ctx(env.get("action").str, params.exists ? params : empty, context.exists ? context : empty);
  for (let i = 0; i < actions.length; i++) {
    if (actions[i].name == ctx.action) {
      actions[i].fn(ctx);
      return ctx.answer();
    }
  }
  ctx.error("unknown_action", `this plugin has no action "${ctx.action}"`);
  return ctx.answer();
}
