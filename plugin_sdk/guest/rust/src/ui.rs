//! UI blocks (plugin_sdk/ui.py) as typed builders on `Ctx`, appended to the answer's "ui" in
//! order. Optional parts left as None are left out of the block.

use crate::json::Writer;
use crate::Ctx;

/// A block's tone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Info,
    Success,
    Warning,
    Danger,
}

/// A form field's input kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Textarea,
    Number,
    Email,
    Tel,
    Date,
    Select,
    Checkbox,
    Hidden,
}

/// A button's style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Primary,
    Secondary,
    Danger,
}

impl Tone {
    fn name(self) -> &'static str {
        ["neutral", "info", "success", "warning", "danger"][self as usize]
    }
}

impl Kind {
    fn name(self) -> &'static str {
        ["text", "textarea", "number", "email", "tel", "date", "select", "checkbox", "hidden"][self as usize]
    }
}

impl Style {
    fn name(self) -> &'static str {
        ["primary", "secondary", "danger"][self as usize]
    }
}

/// A table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Null,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Str(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Str(s)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Num(v)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}

/// A timeline entry.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub time: String,
    pub title: String,
    pub text: Option<String>,
    pub tone: Option<Tone>,
}

/// A form field: `Field::new("name", "Name").kind(Kind::Tel).required()`.
#[derive(Clone, Debug)]
pub struct Field {
    name: String,
    label: String,
    kind: Option<Kind>,
    value: Option<String>, // JSON text of a scalar
    placeholder: Option<String>,
    required: bool,
    options: Option<Vec<(String, String)>>,
}

impl Field {
    pub fn new(name: &str, label: &str) -> Self {
        Field { name: name.into(), label: label.into(), kind: None, value: None, placeholder: None,
                required: false, options: None }
    }
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// A string value.
    pub fn value(mut self, value: &str) -> Self {
        let mut w = Writer::new();
        w.str(value);
        self.value = Some(w.finish());
        self
    }
    pub fn value_int(mut self, value: i64) -> Self {
        self.value = Some(value.to_string());
        self
    }
    pub fn value_bool(mut self, value: bool) -> Self {
        self.value = Some(value.to_string());
        self
    }
    pub fn placeholder(mut self, text: &str) -> Self {
        self.placeholder = Some(text.into());
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// A select's (value, label) options.
    pub fn options(mut self, options: &[(&str, &str)]) -> Self {
        self.options = Some(options.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect());
        self
    }
    fn write(&self, w: &mut Writer) {
        w.obj().kstr("name", &self.name).kstr("label", &self.label);
        if let Some(kind) = self.kind {
            w.kstr("kind", kind.name());
        }
        if let Some(value) = &self.value {
            w.kraw("value", value);
        }
        if let Some(text) = &self.placeholder {
            w.kstr("placeholder", text);
        }
        if self.required {
            w.kbool("required", true);
        }
        if let Some(options) = &self.options {
            w.karr("options");
            for (value, label) in options {
                w.obj().kstr("value", value).kstr("label", label).end();
            }
            w.end();
        }
        w.end();
    }
}

/// A form button: `Button::new("Save").style(Style::Primary)`.
#[derive(Clone, Debug)]
pub struct Button {
    label: String,
    action: Option<String>,
    style: Option<Style>,
    value: Option<String>,
}

impl Button {
    pub fn new(label: &str) -> Self {
        Button { label: label.into(), action: None, style: None, value: None }
    }
    /// Another of the plugin's actions than the form's.
    pub fn action(mut self, action: &str) -> Self {
        self.action = Some(action.into());
        self
    }
    pub fn style(mut self, style: Style) -> Self {
        self.style = Some(style);
        self
    }
    pub fn value(mut self, value: &str) -> Self {
        self.value = Some(value.into());
        self
    }
}

/// A form bound to one of the plugin's actions: `Form::new("greet").field(...).button(...)`.
#[derive(Clone, Debug)]
pub struct Form {
    action: String,
    title: Option<String>,
    fields: Vec<Field>,
    buttons: Vec<Button>,
}

impl Form {
    pub fn new(action: &str) -> Self {
        Form { action: action.into(), title: None, fields: Vec::new(), buttons: Vec::new() }
    }
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }
    pub fn button(mut self, button: Button) -> Self {
        self.buttons.push(button);
        self
    }
}

fn block(kind: &str) -> Writer {
    let mut w = Writer::new();
    w.obj().kstr("type", kind);
    w
}

fn toned(kind: &str, text: &str, tone: Option<Tone>) -> String {
    let mut w = block(kind);
    w.kstr("text", text);
    if let Some(tone) = tone {
        w.kstr("tone", tone.name());
    }
    w.finish()
}

impl Ctx {
    fn push(&mut self, block: String) {
        self.ui.push(block);
    }
    /// A heading; `level` 1-3, 0 leaves it out.
    pub fn heading(&mut self, text: &str, level: u8) {
        let mut w = block("heading");
        w.kstr("text", text);
        if level != 0 {
            w.kint("level", level as i64);
        }
        self.push(w.finish());
    }
    pub fn text(&mut self, text: &str, tone: impl Into<Option<Tone>>) {
        self.push(toned("text", text, tone.into()));
    }
    pub fn alert(&mut self, text: &str, tone: impl Into<Option<Tone>>) {
        self.push(toned("alert", text, tone.into()));
    }
    pub fn badge(&mut self, text: &str, tone: impl Into<Option<Tone>>) {
        self.push(toned("badge", text, tone.into()));
    }
    /// A link; `href` is tel:, sip:, sips:, mailto: or a CMS path such as /clients/12.
    pub fn link(&mut self, text: &str, href: &str) {
        let mut w = block("link");
        w.kstr("text", text).kstr("href", href);
        self.push(w.finish());
    }
    /// A clock the page ticks from `since` (a UTC time such as "2026-11-24T14:05:09Z").
    pub fn timer(&mut self, since: &str, label: Option<&str>) {
        let mut w = block("timer");
        if let Some(label) = label {
            w.kstr("label", label);
        }
        w.kstr("since", since);
        self.push(w.finish());
    }
    /// (key, value) pairs.
    pub fn key_value(&mut self, items: &[(&str, &str)]) {
        let mut w = block("key_value");
        w.karr("items");
        for (key, value) in items {
            w.obj().kstr("key", key).kstr("value", value).end();
        }
        self.push(w.finish());
    }
    pub fn list(&mut self, ordered: bool, items: &[&str]) {
        let mut w = block("list");
        if ordered {
            w.kbool("ordered", true);
        }
        w.karr("items");
        for item in items {
            w.str(item);
        }
        self.push(w.finish());
    }
    /// Monospace output lines.
    pub fn terminal(&mut self, lines: &[&str]) {
        let mut w = block("terminal");
        w.karr("lines");
        for line in lines {
            w.str(line);
        }
        self.push(w.finish());
    }
    pub fn timeline(&mut self, events: &[Event]) {
        let mut w = block("timeline");
        w.karr("items");
        for e in events {
            w.obj().kstr("time", &e.time).kstr("title", &e.title);
            if let Some(text) = &e.text {
                w.kstr("text", text);
            }
            if let Some(tone) = e.tone {
                w.kstr("tone", tone.name());
            }
            w.end();
        }
        self.push(w.finish());
    }
    pub fn table(&mut self, columns: &[&str], rows: &[Vec<Cell>]) {
        let mut w = block("table");
        w.karr("columns");
        for column in columns {
            w.str(column);
        }
        w.end().karr("rows");
        for row in rows {
            w.arr();
            for cell in row {
                match cell {
                    Cell::Str(s) => w.str(s),
                    Cell::Int(v) => w.int(*v),
                    Cell::Num(v) => w.num(*v),
                    Cell::Bool(v) => w.bool(*v),
                    Cell::Null => w.null(),
                };
            }
            w.end();
        }
        self.push(w.finish());
    }
    pub fn form(&mut self, form: Form) {
        let mut w = block("form");
        w.kstr("action", &form.action);
        if let Some(title) = &form.title {
            w.kstr("title", title);
        }
        if !form.fields.is_empty() {
            w.karr("fields");
            for field in &form.fields {
                field.write(&mut w);
            }
            w.end();
        }
        if !form.buttons.is_empty() {
            w.karr("buttons");
            for b in &form.buttons {
                w.obj().kstr("label", &b.label);
                if let Some(action) = &b.action {
                    w.kstr("action", action);
                }
                if let Some(style) = b.style {
                    w.kstr("style", style.name());
                }
                if let Some(value) = &b.value {
                    w.kstr("value", value);
                }
                w.end();
            }
            w.end();
        }
        self.push(w.finish());
    }
    /// Any block as JSON text.
    pub fn block_json(&mut self, json: &str) {
        self.push(json.to_string());
    }
}
