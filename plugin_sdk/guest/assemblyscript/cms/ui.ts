// UI blocks (plugin_sdk/ui.py), appended to the answer's "ui" in order. Null optional arguments
// (tone, title, style, ...) are left out; tone is "neutral", "info", "success", "warning" or "danger".
import { abortWith } from "./abort";
import { JsonWriter } from "./json";

/** A choice of a "select" field. */
export class Option {
  constructor(public value: string, public label: string | null = null) {}
}

/** A form field; `value` (a string) or `valueJson` (any scalar as JSON: "3", "true") prefills it. */
export class Field {
  label: string | null = null;
  kind: string | null = null;
  placeholder: string | null = null;
  value: string | null = null;
  valueJson: string | null = null;
  required: bool = false;
  options: Option[] | null = null;
  constructor(public name: string) {}
  withLabel(label: string): Field { this.label = label; return this; }
  withKind(kind: string): Field { this.kind = kind; return this; }
  withPlaceholder(text: string): Field { this.placeholder = text; return this; }
  withValue(value: string | null): Field { this.value = value; return this; }
  withValueJson(json: string): Field { this.valueJson = json; return this; }
  withRequired(required: bool = true): Field { this.required = required; return this; }
  withOptions(options: Option[]): Field { this.options = options; return this; }
}

/** A form button; without `action` it submits the form's action. */
export class Button {
  action: string | null = null;
  style: string | null = null;
  value: string | null = null;
  constructor(public label: string) {}
  withAction(action: string): Button { this.action = action; return this; }
  withStyle(style: string): Button { this.style = style; return this; }
  withValue(value: string): Button { this.value = value; return this; }
}

const enum State { NONE, PAIRS, TABLE, ROW, ITEMS, LINES, EVENTS, FORM, FIELDS, BUTTONS }

/** The answer's UI. A block is finished by the next one; adding items to the wrong block is a
 *  programming error and ends the call with fault "trap". */
export class Ui {
  w: JsonWriter = new JsonWriter();
  private state: State = State.NONE;

  get isEmpty(): bool { return this.w.depth == 0; }

  /** Finishes the current block. */
  end(): void {
    while (this.w.depth > 1) this.w.end();
    this.state = State.NONE;
  }
  private block(type: string, text: string | null = null, tone: string | null = null): JsonWriter {
    this.end();
    if (this.w.depth == 0) this.w.arr();
    this.w.obj().kstr("type", type);
    if (text !== null) this.w.kstr("text", text);
    if (tone !== null) this.w.kstr("tone", tone);
    return this.w;
  }
  private within(state: State, misuse: string): JsonWriter {
    if (this.state != state) abortWith("trap", misuse);
    return this.w;
  }
  private opt(key: string, value: string | null): void {
    if (value !== null) this.w.kstr(key, value);
  }

  /** level 1-3; 0 leaves it out. */
  heading(text: string, level: i32 = 0): void {
    const b = this.block("heading", text);
    if (level) b.kint("level", level);
  }
  text(text: string, tone: string | null = null): void { this.block("text", text, tone); }
  alert(text: string, tone: string | null = null): void { this.block("alert", text, tone); }
  badge(text: string, tone: string | null = null): void { this.block("badge", text, tone); }
  /** href: tel:, sip:, sips:, mailto: or a /a/cms/path. */
  link(text: string, href: string): void { this.block("link", text).kstr("href", href); }
  /** A running clock the page ticks from `since` (a UTC time such as 2026-11-24T14:05:09Z). */
  timer(since: string, label: string | null = null): void {
    this.block("timer");
    this.opt("label", label);
    this.w.kstr("since", since);
  }
  /** Any block as JSON text. */
  blockJson(json: string): void {
    this.end();
    if (this.w.depth == 0) this.w.arr();
    this.w.raw(json);
  }

  /** Then pair(key, value) ... */
  keyValue(): void {
    this.block("key_value").karr("items");
    this.state = State.PAIRS;
  }
  pair(key: string, value: string): void {
    this.within(State.PAIRS, "ui.pair outside ui.keyValue").obj().kstr("key", key).kstr("value", value).end();
  }
  /** Then item(text) ... */
  list(ordered: bool = false): void {
    const b = this.block("list");
    if (ordered) b.kbool("ordered", true);
    b.karr("items");
    this.state = State.ITEMS;
  }
  item(text: string): void { this.within(State.ITEMS, "ui.item outside ui.list").str(text); }
  /** Then line(text) ... */
  terminal(): void {
    this.block("terminal").karr("lines");
    this.state = State.LINES;
  }
  line(text: string): void { this.within(State.LINES, "ui.line outside ui.terminal").str(text); }
  /** Then event(time, title, text, tone) ... */
  timeline(): void {
    this.block("timeline").karr("items");
    this.state = State.EVENTS;
  }
  event(time: string, title: string, text: string | null = null, tone: string | null = null): void {
    this.within(State.EVENTS, "ui.event outside ui.timeline").obj().kstr("time", time).kstr("title", title);
    this.opt("text", text);
    this.opt("tone", tone);
    this.w.end();
  }

  /** Then per row row(), and its cells cell(s), cellInt, cellNum, cellBool, cellNull. */
  table(columns: string[]): void {
    const b = this.block("table").karr("columns");
    for (let i = 0; i < columns.length; i++) b.str(columns[i]);
    b.end().karr("rows");
    this.state = State.TABLE;
  }
  row(): void {
    if (this.state == State.ROW) { this.w.end(); this.state = State.TABLE; }
    this.within(State.TABLE, "ui.row outside ui.table").arr();
    this.state = State.ROW;
  }
  private cellWriter(): JsonWriter { return this.within(State.ROW, "a table cell outside ui.row"); }
  cell(text: string): void { this.cellWriter().str(text); }
  cellInt(v: i64): void { this.cellWriter().int(v); }
  cellNum(v: f64): void { this.cellWriter().num(v); }
  cellBool(v: bool): void { this.cellWriter().bool(v); }
  cellNull(): void { this.cellWriter().null(); }

  /** Then its fields, then its buttons. */
  form(action: string, title: string | null = null): void {
    this.block("form").kstr("action", action);
    this.opt("title", title);
    this.state = State.FORM;
  }
  field(f: Field): void {
    if (this.state == State.FORM) { this.w.karr("fields"); this.state = State.FIELDS; }
    const b = this.within(State.FIELDS, "ui.field outside ui.form, or after its buttons");
    const label = f.label;
    b.obj().kstr("name", f.name).kstr("label", label !== null ? label : f.name);
    this.opt("kind", f.kind);
    const value = f.value, valueJson = f.valueJson;
    if (value !== null) b.kstr("value", value);
    else if (valueJson !== null) b.kraw("value", valueJson);
    this.opt("placeholder", f.placeholder);
    if (f.required) b.kbool("required", true);
    const options = f.options;
    if (options !== null) {
      b.karr("options");
      for (let i = 0; i < options.length; i++) {
        const o = options[i];
        const optionLabel = o.label;
        b.obj().kstr("value", o.value).kstr("label", optionLabel !== null ? optionLabel : o.value).end();
      }
      b.end();
    }
    b.end();
  }
  button(btn: Button): void {
    if (this.state == State.FIELDS) { this.w.end(); this.state = State.FORM; }
    if (this.state == State.FORM) { this.w.karr("buttons"); this.state = State.BUTTONS; }
    const b = this.within(State.BUTTONS, "ui.button outside ui.form");
    b.obj().kstr("label", btn.label);
    this.opt("action", btn.action);
    this.opt("style", btn.style);
    this.opt("value", btn.value);
    b.end();
  }
}
