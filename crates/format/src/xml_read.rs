//! XML → JSON. A recursive descent over quick-xml's event stream (no DOM): the model says,
//! for each element name, whether it is a primitive, a complex type, a resource wrapper or
//! narrative, and whether it repeats, which is all JSON needs that XML does not say.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use serde_json::{Map, Value};
use tsunagu_model::Model;

use crate::error::FormatError;
use crate::primitive::from_text;
use crate::xhtml::XHTML_NS;
use crate::xml_write::FHIR_NS;

/// Converts a FHIR XML resource to FHIR JSON. Comments and processing instructions are
/// ignored; DTDs are refused; unknown elements and attributes are errors, since JSON has no
/// way to carry them. Elements nested deeper than the default `max_json_depth` are refused.
pub fn xml_to_json(xml: &str) -> Result<Value, FormatError> {
    xml_to_json_limited(xml, tsunagu_limits::Limits::default().max_json_depth)
}

/// [`xml_to_json`] refusing elements nested deeper than `max_depth` (the reader recurses
/// per level; each XML level is at least one JSON level, so a resource within
/// `max_json_depth` is never refused here).
pub fn xml_to_json_limited(xml: &str, max_depth: usize) -> Result<Value, FormatError> {
    // XML 1.0 cannot carry these characters, raw or as references; refused here so that
    // nothing read can fail to be written back.
    if let Some(c) = crate::first_non_xml_char(xml) {
        let position = xml.find(c).unwrap_or(0) as u64;
        return Err(FormatError::MalformedXml { position, message: not_xml_char(c) });
    }
    let mut p = Parser { r: NsReader::from_str(xml), src: xml, model: tsunagu_model::r4(), depth: 0, max_depth };
    p.r.config_mut().check_comments = true;
    loop {
        match p.next()? {
            Event::Start(e) => {
                let v = p.root(&e, false)?;
                p.trailing()?;
                return Ok(v);
            }
            Event::Empty(e) => {
                let v = p.root(&e, true)?;
                p.trailing()?;
                return Ok(v);
            }
            Event::Text(t) if is_blank(&t) => {}
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return Err(p.malformed("no root element")),
            _ => return Err(p.malformed("unexpected content before the root element")),
        }
    }
}

struct Parser<'a> {
    r: NsReader<&'a [u8]>,
    src: &'a str,
    model: &'static Model,
    depth: usize,
    max_depth: usize,
}

/// A JSON property being assembled from XML siblings of one name.
enum Slot {
    One(Value),
    Many(Vec<Value>),
    /// Primitive values and their `_name` companions, index-aligned.
    Prim {
        array: bool,
        values: Vec<Option<Value>>,
        exts: Vec<Option<Value>>,
    },
}

#[derive(Default)]
struct Builder<'a> {
    slots: Vec<(&'a str, Slot)>,
}

impl<'a> Builder<'a> {
    fn slot(&mut self, name: &'a str) -> Option<&mut Slot> {
        // Siblings of one name are adjacent in valid XML: check the last slot first.
        let i = self.slots.iter().rposition(|(n, _)| *n == name)?;
        Some(&mut self.slots[i].1)
    }

    fn finish(self, mut map: Map<String, Value>) -> Map<String, Value> {
        for (name, slot) in self.slots {
            match slot {
                Slot::One(v) => {
                    map.insert(name.to_string(), v);
                }
                Slot::Many(vs) => {
                    map.insert(name.to_string(), Value::Array(vs));
                }
                Slot::Prim { array: false, mut values, mut exts } => {
                    if let Some(v) = values.pop().flatten() {
                        map.insert(name.to_string(), v);
                    }
                    if let Some(x) = exts.pop().flatten() {
                        map.insert(format!("_{name}"), x);
                    }
                }
                Slot::Prim { array: true, values, exts } => {
                    // JSON puts `null` where one side of the pair is absent, and leaves a
                    // side out entirely when it is absent everywhere.
                    if values.iter().any(Option::is_some) {
                        let a = values.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
                        map.insert(name.to_string(), Value::Array(a));
                    }
                    if exts.iter().any(Option::is_some) {
                        let a = exts.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
                        map.insert(format!("_{name}"), Value::Array(a));
                    }
                }
            }
        }
        map
    }
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

impl<'a> Parser<'a> {
    fn malformed(&self, message: impl Into<String>) -> FormatError {
        FormatError::MalformedXml { position: self.r.buffer_position(), message: message.into() }
    }

    fn next(&mut self) -> Result<Event<'a>, FormatError> {
        match self.r.read_event() {
            Ok(Event::DocType(_)) => Err(FormatError::Dtd),
            Ok(Event::CData(_)) => Err(self.malformed("CDATA sections are not allowed in FHIR XML")),
            Ok(ev) => Ok(ev),
            Err(e) => Err(FormatError::MalformedXml { position: self.r.error_position(), message: e.to_string() }),
        }
    }

    /// The element's local name and whether its namespace (by its prefix, or the default
    /// one in scope) is `ns`.
    fn local_name(&self, e: &BytesStart<'a>, ns: &str) -> Result<(&'a str, bool), FormatError> {
        let (resolved, local) = self.r.resolve_element(e.name());
        // `from_str` readers borrow events from the input; re-slice the input by offset to
        // get the name with the input's lifetime.
        let n = local.into_inner();
        let off = (n.as_ptr() as usize).wrapping_sub(self.src.as_ptr() as usize);
        let name = match self.src.get(off..off.wrapping_add(n.len())) {
            Some(s) if s.as_bytes() == n => s,
            _ => return Err(self.malformed("invalid element name")),
        };
        match resolved {
            ResolveResult::Bound(Namespace(uri)) => Ok((name, uri == ns.as_bytes())),
            ResolveResult::Unbound => Ok((name, false)),
            ResolveResult::Unknown(prefix) => Err(self.malformed(format!(
                "the namespace prefix '{}' of <{}> is not declared",
                String::from_utf8_lossy(&prefix),
                String::from_utf8_lossy(e.name().as_ref())
            ))),
        }
    }

    /// The local name of an element that must be in FHIR's namespace (declared as the
    /// default or bound to any prefix): an element of another namespace is not FHIR
    /// content, whatever its local name, and JSON could not carry it.
    fn name(&self, e: &BytesStart<'a>) -> Result<&'a str, FormatError> {
        let (name, fhir) = self.local_name(e, FHIR_NS)?;
        if !fhir {
            return Err(not_in_namespace(name, FHIR_NS));
        }
        Ok(name)
    }

    fn root(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<Value, FormatError> {
        let name = self.name(e)?;
        self.resource(name, e, empty)
    }

    /// Only comments, whitespace and processing instructions may follow the root.
    fn trailing(&mut self) -> Result<(), FormatError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(self.malformed("content after the root element")),
            }
        }
    }

    fn resource(&mut self, name: &'a str, e: &BytesStart<'a>, empty: bool) -> Result<Value, FormatError> {
        if !self.model.is_resource_type(name) {
            return Err(FormatError::UnknownResourceType(name.to_string()));
        }
        let mut map = Map::new();
        map.insert("resourceType".to_string(), Value::String(name.to_string()));
        Ok(Value::Object(self.complex(e, empty, name, map)?))
    }

    /// Reads the attributes and children of a complex element whose start tag was `e`.
    fn complex(
        &mut self,
        e: &BytesStart<'a>,
        empty: bool,
        parent: &str,
        mut map: Map<String, Value>,
    ) -> Result<Map<String, Value>, FormatError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let e = tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::JsonDepth, self.max_depth);
            return Err(FormatError::Limit(e.at(format!("byte {}", self.r.buffer_position()))));
        }
        for a in e.attributes() {
            let a = a.map_err(|err| self.malformed(err.to_string()))?;
            let key = self.str(a.key.into_inner())?;
            if self.ignored_attr(a.key, parent)? {
                continue;
            }
            match crate::names::child(self.model, parent, key) {
                Some((def, _)) if def.xml_attr => {
                    let v = self.attr_value(&a.value)?;
                    map.insert(key.to_string(), Value::String(v));
                }
                _ => return Err(FormatError::unknown(parent, &format!("@{key}"))),
            }
        }
        let mut b = Builder::default();
        if !empty {
            loop {
                match self.next()? {
                    Event::Start(c) => self.child(&c, false, parent, &mut b)?,
                    Event::Empty(c) => self.child(&c, true, parent, &mut b)?,
                    Event::End(_) => break,
                    Event::Text(t) if is_blank(&t) => {}
                    Event::Comment(_) | Event::PI(_) => {}
                    Event::Text(_) => {
                        return Err(FormatError::invalid(
                            parent,
                            "text content is not allowed here (values go in a value attribute)",
                        ))
                    }
                    Event::Eof => return Err(self.malformed("unexpected end of document")),
                    _ => return Err(self.malformed("unexpected markup")),
                }
            }
        }
        self.depth -= 1;
        Ok(b.finish(map))
    }

    fn child(&mut self, e: &BytesStart<'a>, empty: bool, parent: &str, b: &mut Builder<'a>) -> Result<(), FormatError> {
        // The narrative is XHTML's; everything else FHIR's.
        let (name, xhtml) = self.local_name(e, XHTML_NS)?;
        let Some((def, ty)) = crate::names::child(self.model, parent, name) else {
            return Err(FormatError::unknown(parent, name));
        };
        if def.xhtml != xhtml {
            return Err(not_in_namespace(name, if def.xhtml { XHTML_NS } else { FHIR_NS }));
        }
        if !def.xhtml && !self.local_name(e, FHIR_NS)?.1 {
            return Err(not_in_namespace(name, FHIR_NS));
        }
        if def.xml_attr {
            return Err(FormatError::invalid(parent, format!("`{name}` must be an attribute")));
        }
        if def.xhtml {
            let div = self.xhtml(e, empty)?;
            return self.put_one(b, name, def.is_array(), Value::String(div.to_string()), parent);
        }
        if self.model.is_primitive(ty.code) {
            let (value, ext) = self.primitive(e, empty, ty.code, def.path)?;
            match b.slot(name) {
                Some(Slot::Prim { array: true, values, exts }) => {
                    values.push(value);
                    exts.push(ext);
                }
                Some(_) => return Err(FormatError::invalid(parent, format!("`{name}` may appear only once"))),
                None => {
                    b.slots.push((name, Slot::Prim { array: def.is_array(), values: vec![value], exts: vec![ext] }))
                }
            }
            return Ok(());
        }
        let v = if ty.code == "Resource" {
            self.wrapped_resource(empty, def.path)?
        } else {
            let child_parent = self.model.child_parent(def, ty);
            Value::Object(self.complex(e, empty, child_parent, Map::new())?)
        };
        self.put_one(b, name, def.is_array(), v, parent)
    }

    fn put_one(
        &self,
        b: &mut Builder<'a>,
        name: &'a str,
        array: bool,
        v: Value,
        parent: &str,
    ) -> Result<(), FormatError> {
        match b.slot(name) {
            Some(Slot::Many(vs)) => vs.push(v),
            Some(_) => return Err(FormatError::invalid(parent, format!("`{name}` may appear only once"))),
            None if array => b.slots.push((name, Slot::Many(vec![v]))),
            None => b.slots.push((name, Slot::One(v))),
        }
        Ok(())
    }

    /// `<name id=".." value=".."><extension …/></name>` → (value, `_name` companion).
    fn primitive(
        &mut self,
        e: &BytesStart<'a>,
        empty: bool,
        code: &str,
        path: &str,
    ) -> Result<(Option<Value>, Option<Value>), FormatError> {
        let mut value = None;
        let mut ext = Map::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.malformed(err.to_string()))?;
            let key = self.str(a.key.into_inner())?;
            match key {
                "value" => value = Some(from_text(code, &self.attr_value(&a.value)?)),
                "id" => {
                    ext.insert("id".to_string(), Value::String(self.attr_value(&a.value)?));
                }
                _ if self.ignored_attr(a.key, path)? => {}
                k => return Err(FormatError::unknown(path, &format!("@{k}"))),
            }
        }
        if !empty {
            let mut extensions = Vec::new();
            self.depth += 1;
            loop {
                match self.next()? {
                    Event::Start(c) | Event::Empty(c) if self.name(&c)? != "extension" => {
                        let n = String::from_utf8_lossy(c.name().as_ref()).into_owned();
                        return Err(FormatError::unknown(path, &n));
                    }
                    Event::Start(c) => {
                        extensions.push(Value::Object(self.complex(&c, false, "Extension", Map::new())?))
                    }
                    Event::Empty(c) => {
                        extensions.push(Value::Object(self.complex(&c, true, "Extension", Map::new())?))
                    }
                    Event::End(_) => break,
                    Event::Text(t) if is_blank(&t) => {}
                    Event::Comment(_) | Event::PI(_) => {}
                    Event::Text(_) => {
                        return Err(FormatError::invalid(
                            path,
                            "text content is not allowed here (values go in a value attribute)",
                        ))
                    }
                    Event::Eof => return Err(self.malformed("unexpected end of document")),
                    _ => return Err(self.malformed("unexpected markup")),
                }
            }
            self.depth -= 1;
            if !extensions.is_empty() {
                ext.insert("extension".to_string(), Value::Array(extensions));
            }
        }
        let ext = (!ext.is_empty()).then_some(Value::Object(ext));
        if value.is_none() && ext.is_none() {
            return Err(FormatError::invalid(path, "a primitive element needs a value or extensions"));
        }
        Ok((value, ext))
    }

    /// `<contained><Patient>…</Patient></contained>`: exactly one resource inside.
    fn wrapped_resource(&mut self, empty: bool, path: &str) -> Result<Value, FormatError> {
        if empty {
            return Err(FormatError::invalid(path, "expected a resource inside"));
        }
        let mut found = None;
        loop {
            match self.next()? {
                Event::Start(c) if found.is_none() => {
                    let n = self.name(&c)?;
                    found = Some(self.resource(n, &c, false)?);
                }
                Event::Empty(c) if found.is_none() => {
                    let n = self.name(&c)?;
                    found = Some(self.resource(n, &c, true)?);
                }
                Event::End(_) => break,
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.malformed("unexpected end of document")),
                _ => return Err(FormatError::invalid(path, "expected exactly one resource inside")),
            }
        }
        found.ok_or_else(|| FormatError::invalid(path, "expected a resource inside"))
    }

    /// The narrative `<div>`, kept as the exact source text (JSON carries XHTML verbatim).
    fn xhtml(&mut self, e: &BytesStart<'a>, empty: bool) -> Result<&'a str, FormatError> {
        let end_of_start = self.r.buffer_position() as usize;
        // The start tag is `<` + its content + `>` (or `/>` when empty).
        let start = end_of_start - e.len() - if empty { 3 } else { 2 };
        if e.name().as_ref() != b"div" {
            return Err(FormatError::invalid("Narrative.div", "narrative must be a <div> element"));
        }
        if !empty {
            let mut depth = 1usize;
            while depth > 0 {
                match self.next()? {
                    Event::Start(_) => depth += 1,
                    Event::End(_) => depth -= 1,
                    Event::Text(t) => {
                        let text = t.unescape().map_err(|err| self.malformed(err.to_string()))?;
                        if let Some(c) = crate::first_non_xml_char(&text) {
                            return Err(self.malformed(not_xml_char(c)));
                        }
                    }
                    Event::Eof => return Err(self.malformed("unexpected end of document")),
                    _ => {}
                }
            }
        }
        let end = self.r.buffer_position() as usize;
        let div = &self.src[start..end];
        crate::xhtml::check(div).map_err(|m| FormatError::invalid("Narrative.div", m))?;
        Ok(div)
    }

    /// Attribute value with XML attribute-value normalisation (literal tabs and line breaks
    /// become spaces; character references survive), then unescaped.
    fn attr_value(&self, raw: &[u8]) -> Result<String, FormatError> {
        let s = self.str(raw)?;
        let s = if s.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
            std::borrow::Cow::Owned(s.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
        } else {
            std::borrow::Cow::Borrowed(s)
        };
        let v = quick_xml::escape::unescape(&s).map_err(|err| self.malformed(err.to_string()))?;
        match crate::first_non_xml_char(&v) {
            Some(c) => Err(self.malformed(not_xml_char(c))),
            None => Ok(v.into_owned()),
        }
    }

    /// Whether an attribute carries no FHIR content and is passed over: a namespace
    /// declaration, or one in XML Schema's or XML's namespace. An attribute of any other
    /// namespace is refused (as an unknown attribute): JSON could not carry it, and
    /// dropping it would lose what the sender meant.
    fn ignored_attr(&self, key: quick_xml::name::QName<'_>, at: &str) -> Result<bool, FormatError> {
        let raw = key.as_ref();
        if raw == b"xmlns" || raw.starts_with(b"xmlns:") {
            return Ok(true);
        }
        if !raw.contains(&b':') {
            return Ok(false);
        }
        match self.r.resolve_attribute(key).0 {
            ResolveResult::Bound(Namespace(ns)) if IGNORED_ATTRIBUTE_NAMESPACES.contains(&ns) => Ok(true),
            ResolveResult::Unknown(prefix) => Err(self.malformed(format!(
                "the namespace prefix '{}' of the attribute {} is not declared",
                String::from_utf8_lossy(&prefix),
                String::from_utf8_lossy(raw)
            ))),
            _ => Err(FormatError::unknown(at, &format!("@{}", String::from_utf8_lossy(raw)))),
        }
    }

    fn str<'b>(&self, b: &'b [u8]) -> Result<&'b str, FormatError> {
        std::str::from_utf8(b).map_err(|_| self.malformed("invalid UTF-8"))
    }
}

fn not_in_namespace(name: &str, ns: &str) -> FormatError {
    FormatError::invalid(name, format!("<{name}> must be in the namespace {ns}"))
}

fn not_xml_char(c: char) -> String {
    format!("character U+{:04X} is not allowed in XML 1.0, raw or as a reference", c as u32)
}

/// XML Schema's instance namespace (`xsi:schemaLocation`) and XML's own (`xml:lang`).
const IGNORED_ATTRIBUTE_NAMESPACES: [&[u8]; 2] =
    [b"http://www.w3.org/2001/XMLSchema-instance", b"http://www.w3.org/XML/1998/namespace"];
