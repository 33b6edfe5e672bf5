//! JSON → XML. Walks the JSON once, asking the model for each property's definition, and
//! writes straight into a `String`: element order comes from the definition order, so no
//! intermediate tree is needed.

use serde_json::{Map, Value};
use tsunagu_model::{ElementDef, Model, TypeRef};

use crate::error::FormatError;
use crate::primitive::to_text;
use crate::xhtml;

pub(crate) const FHIR_NS: &str = "http://hl7.org/fhir";

/// Converts a FHIR JSON resource to FHIR XML. With `pretty`, elements are indented two
/// spaces per level (narrative XHTML is always written exactly as given).
pub fn json_to_xml(resource: &Value, pretty: bool) -> Result<String, FormatError> {
    let obj = resource.as_object().ok_or_else(|| FormatError::invalid("(root)", "a resource must be a JSON object"))?;
    let mut w = Writer { out: String::with_capacity(4096), pretty, model: tsunagu_model::r4() };
    w.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    w.newline();
    w.resource(obj, 0, true)?;
    Ok(w.out)
}

struct Writer {
    out: String,
    pretty: bool,
    model: &'static Model,
}

/// One element of a JSON object: the value and, for primitives, its `_name` companion.
struct Entry<'v> {
    key: &'v str,
    def: &'static ElementDef,
    ty: &'static TypeRef,
    value: Option<&'v Value>,
    ext: Option<&'v Value>,
}

impl Writer {
    fn newline(&mut self) {
        if self.pretty {
            self.out.push('\n');
        }
    }

    fn indent(&mut self, depth: usize) {
        if self.pretty {
            for _ in 0..depth {
                self.out.push_str("  ");
            }
        }
    }

    fn resource(&mut self, obj: &Map<String, Value>, depth: usize, root: bool) -> Result<(), FormatError> {
        let rt = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(FormatError::invalid("(resource)", "missing resourceType")),
        };
        if !self.model.is_resource_type(rt) {
            return Err(FormatError::UnknownResourceType(rt.to_string()));
        }
        self.complex(rt, obj, rt, depth, true, root)
    }

    /// Sorts the object's properties into definition order, pairing `x` with `_x`.
    fn entries<'v>(
        &self,
        obj: &'v Map<String, Value>,
        parent: &str,
        is_resource: bool,
    ) -> Result<Vec<Entry<'v>>, FormatError> {
        let mut entries: Vec<Entry<'v>> = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            if is_resource && k == "resourceType" {
                continue;
            }
            let (base, is_ext) = match k.strip_prefix('_') {
                Some(b) => (b, true),
                None => (k.as_str(), false),
            };
            if let Some(e) = entries.iter_mut().find(|e| e.key == base) {
                if is_ext {
                    e.ext = Some(v);
                } else {
                    e.value = Some(v);
                }
                continue;
            }
            let (def, ty) =
                crate::names::child(self.model, parent, base).ok_or_else(|| FormatError::unknown(parent, k))?;
            if is_ext && !self.model.is_primitive(ty.code) {
                return Err(FormatError::unknown(parent, k));
            }
            let (value, ext) = if is_ext { (None, Some(v)) } else { (Some(v), None) };
            entries.push(Entry { key: base, def, ty, value, ext });
        }
        // Stable: keeps JSON order among properties of one definition (never more than one
        // in valid content, but harmless otherwise).
        entries.sort_by_key(|e| e.def.order);
        Ok(entries)
    }

    #[allow(clippy::too_many_arguments)]
    fn complex(
        &mut self,
        name: &str,
        obj: &Map<String, Value>,
        parent: &str,
        depth: usize,
        is_resource: bool,
        root: bool,
    ) -> Result<(), FormatError> {
        let entries = self.entries(obj, parent, is_resource)?;
        self.indent(depth);
        self.out.push('<');
        self.out.push_str(name);
        if root {
            self.out.push_str(" xmlns=\"");
            self.out.push_str(FHIR_NS);
            self.out.push('"');
        }
        let mut has_children = false;
        for e in &entries {
            if e.def.xml_attr {
                let text = e
                    .value
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| FormatError::invalid(parent, format!("`{}` must be a string", e.key)))?;
                self.attr(e.key, text, parent)?;
            } else {
                has_children = true;
            }
        }
        if !has_children {
            self.out.push_str("/>");
            self.newline();
            return Ok(());
        }
        self.out.push('>');
        self.newline();
        for e in &entries {
            if !e.def.xml_attr {
                self.element(e, parent, depth + 1)?;
            }
        }
        self.close_tag(name, depth);
        Ok(())
    }

    fn element(&mut self, e: &Entry<'_>, parent: &str, depth: usize) -> Result<(), FormatError> {
        let code = e.ty.code;
        if e.def.xhtml {
            let div = e
                .value
                .and_then(|v| v.as_str())
                .ok_or_else(|| FormatError::invalid(parent, "narrative div must be a string"))?;
            xhtml::check(div).map_err(|m| FormatError::invalid(e.def.path, m))?;
            self.indent(depth);
            self.out.push_str(div);
            self.newline();
            return Ok(());
        }
        if self.model.is_primitive(code) {
            if e.def.is_array() {
                let values = as_list(e.value);
                let exts = as_list(e.ext);
                if !values.is_empty() && !exts.is_empty() && values.len() != exts.len() {
                    return Err(FormatError::invalid(e.def.path, format!("`{0}` and `_{0}` differ in length", e.key)));
                }
                for i in 0..values.len().max(exts.len()) {
                    self.primitive(e.key, values.get(i).copied(), exts.get(i).copied(), e.def.path, depth)?;
                }
                return Ok(());
            }
            return self.primitive(e.key, e.value, e.ext, e.def.path, depth);
        }
        let items = as_list(e.value);
        if code == "Resource" {
            for item in items {
                let obj = item
                    .as_object()
                    .ok_or_else(|| FormatError::invalid(e.def.path, "a resource must be a JSON object"))?;
                self.indent(depth);
                self.out.push('<');
                self.out.push_str(e.key);
                self.out.push('>');
                self.newline();
                self.resource(obj, depth + 1, false)?;
                self.indent(depth);
                self.out.push_str("</");
                self.out.push_str(e.key);
                self.out.push('>');
                self.newline();
            }
            return Ok(());
        }
        let child_parent = self.model.child_parent(e.def, e.ty);
        for item in items {
            let obj = item
                .as_object()
                .ok_or_else(|| FormatError::invalid(e.def.path, format!("`{}` must be a JSON object", e.key)))?;
            self.complex(e.key, obj, child_parent, depth, false, false)?;
        }
        Ok(())
    }

    fn primitive(
        &mut self,
        name: &str,
        value: Option<&Value>,
        ext: Option<&Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), FormatError> {
        let value = value.filter(|v| !v.is_null());
        let ext = match ext {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(FormatError::invalid(path, format!("`_{name}` must be an object"))),
        };
        if value.is_none() && ext.is_none() {
            return Err(FormatError::invalid(path, format!("`{name}` has neither a value nor extensions")));
        }
        self.indent(depth);
        self.out.push('<');
        self.out.push_str(name);
        let mut extensions: &[Value] = &[];
        if let Some(m) = ext {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("id", Value::String(id)) => self.attr("id", id, path)?,
                    ("extension", Value::Array(a)) => extensions = a,
                    _ => return Err(FormatError::unknown(&format!("{path} (primitive extension)"), k)),
                }
            }
        }
        if let Some(v) = value {
            let text =
                to_text(v).ok_or_else(|| FormatError::invalid(path, format!("`{name}` must be a primitive value")))?;
            self.attr("value", &text, path)?;
        }
        if extensions.is_empty() {
            self.out.push_str("/>");
            self.newline();
            return Ok(());
        }
        self.out.push('>');
        self.newline();
        for x in extensions {
            let obj = x.as_object().ok_or_else(|| FormatError::invalid(path, "an extension must be a JSON object"))?;
            self.complex("extension", obj, "Extension", depth + 1, false, false)?;
        }
        self.close_tag(name, depth);
        Ok(())
    }

    fn close_tag(&mut self, name: &str, depth: usize) {
        self.indent(depth);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self.newline();
    }

    fn attr(&mut self, name: &str, value: &str, path: &str) -> Result<(), FormatError> {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_attr(&mut self.out, value)
            .map_err(|c| FormatError::invalid(path, format!("character U+{:04X} cannot appear in XML", c as u32)))?;
        self.out.push('"');
        Ok(())
    }
}

/// A property's values as a list: arrays as themselves, a lone value as one item (lenient:
/// the structure check is where a single-for-array is reported).
fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    }
}

/// Escapes an attribute value; whitespace other than space is written as a character
/// reference, or attribute-value normalisation would turn it into a space on reading.
fn escape_attr(out: &mut String, s: &str) -> Result<(), char> {
    let mut last = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\n' => "&#xA;",
            '\r' => "&#xD;",
            '\t' => "&#x9;",
            c if !is_xml_char(c) => return Err(c),
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + c.len_utf8();
    }
    out.push_str(&s[last..]);
    Ok(())
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production): no C0 control other than
/// tab, line feed and carriage return, and neither U+FFFE nor U+FFFF. Rust strings hold no
/// surrogates, so nothing else is excluded.
pub fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// The first character of `s` that XML 1.0 cannot carry, if any. A byte scan (the excluded
/// characters are C0 bytes or start with `EF BF BE`/`EF BF BF`), so it costs almost nothing
/// on the common all-good string.
pub fn first_non_xml_char(s: &str) -> Option<char> {
    let b = s.as_bytes();
    let suspect = b.iter().position(|&x| (x < 0x20 && !matches!(x, b'\t' | b'\n' | b'\r')) || x == 0xEF)?;
    s[suspect..].chars().find(|&c| !is_xml_char(c))
}
