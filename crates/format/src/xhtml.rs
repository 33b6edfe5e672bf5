//! Narrative XHTML (`Narrative.div`): JSON carries it as a string, XML embeds it. Both
//! directions keep the exact text.
//!
//! Two levels of checking:
//!
//! * [`check`] — well-formedness only: one `<div>` in the XHTML namespace, no DTD, no entity
//!   beyond XML's predefined ones and character references. This is what the converters
//!   need to embed the text without breaking the surrounding document, and it never refuses
//!   content that was stored before the narrative rules existed.
//! * [`check_narrative`] — the rules of FHIR R4 narrative.html and the invariants on
//!   `Narrative.div`: txt-1 (only the basic HTML 4.0 formatting elements and attributes,
//!   `<a>`, images and inline style; no scripts, event handlers, forms, frames, objects,
//!   foreign namespaces or processing instructions; no executable URLs or style tricks)
//!   and txt-2 (some non-whitespace content). This is what decides whether a narrative may
//!   be stored; every failure names the element or attribute and the rule, in English and
//!   Japanese.
//!
//! Both are a single pass over quick-xml events; names are compared as bytes against
//! static tables and nothing is allocated per element on the success path (entity
//! decoding aside, and one scratch buffer reused for all `style` attributes).

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Reader};

pub(crate) const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Checks that `div` is one well-formed `<div>` element in the XHTML namespace, with no
/// DTD and no entity other than XML's predefined ones. Content rules are not applied (see
/// [`check_narrative`]); the message is English.
pub(crate) fn check(div: &str) -> Result<(), String> {
    well_formed(div).map_err(|f| f.en())
}

/// Checks `div` against FHIR R4's narrative rules: well-formed XHTML as for [`check`],
/// then txt-1 (allowed elements and attributes only, no script, event handler, executable
/// URL, unsafe style, foreign namespace or processing instruction) and txt-2 (some
/// non-whitespace text or an image). The error is `(English, Japanese)` and names the
/// element or attribute and the rule it breaks.
pub fn check_narrative(div: &str) -> Result<(), (String, String)> {
    Narrative::default().scan(div).map_err(|f| (f.en(), f.ja()))
}

fn well_formed(div: &str) -> Result<(), Fault> {
    let mut r = Reader::from_str(div);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let ev = r.read_event().map_err(Fault::syntax)?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 {
                    root(e, &mut seen_root)?;
                }
                for a in e.attributes() {
                    a.map_err(Fault::syntax)?.unescape_value().map_err(Fault::syntax)?;
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                let text = t.unescape().map_err(Fault::syntax)?;
                if depth == 0 && !is_blank(&text) {
                    return Err(Fault::TextOutside);
                }
            }
            Event::DocType(_) => return Err(Fault::Dtd),
            Event::Decl(_) => return Err(Fault::XmlDecl),
            Event::Eof if depth > 0 => return Err(Fault::Unclosed),
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(Fault::NotDiv);
    }
    Ok(())
}

/// The checks on the outermost element, shared by both levels.
fn root(e: &BytesStart<'_>, seen_root: &mut bool) -> Result<(), Fault> {
    if *seen_root {
        return Err(Fault::NotSingle);
    }
    *seen_root = true;
    if e.name().as_ref() != b"div" {
        return Err(Fault::NotDiv);
    }
    let ns = e.try_get_attribute("xmlns").map_err(Fault::syntax)?;
    if ns.as_ref().map(|a| a.value.as_ref()) != Some(XHTML_NS.as_bytes()) {
        return Err(Fault::NoXmlns);
    }
    Ok(())
}

/// One pass of [`check_narrative`], with the scratch buffer reused for style attributes.
#[derive(Default)]
struct Narrative {
    css: Vec<u8>,
}

impl Narrative {
    fn scan(&mut self, div: &str) -> Result<(), Fault> {
        let mut r = NsReader::from_str(div);
        let mut depth = 0usize;
        let mut seen_root = false;
        // txt-2: some non-whitespace text, or an image.
        let mut content = false;
        loop {
            let (ns, ev) = r.read_resolved_event().map_err(Fault::syntax)?;
            match ev {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    if depth == 0 {
                        root(e, &mut seen_root)?;
                    }
                    let name = e.name();
                    match ns {
                        ResolveResult::Bound(n) if n.as_ref() == XHTML_NS.as_bytes() => {}
                        ResolveResult::Bound(n) => return Err(Fault::foreign(name.as_ref(), n.as_ref())),
                        ResolveResult::Unbound => return Err(Fault::foreign(name.as_ref(), b"")),
                        ResolveResult::Unknown(p) => {
                            return Err(Fault::Syntax(format!("undeclared namespace prefix '{}'", lossy(&p))))
                        }
                    }
                    let local = name.local_name();
                    let el = local.as_ref();
                    if !allowed_element(el) {
                        return Err(Fault::Element(lossy(name.as_ref())));
                    }
                    content |= el == b"img";
                    self.attributes(e, el)?;
                    if matches!(ev, Event::Start(_)) {
                        depth += 1;
                    }
                }
                Event::End(_) => depth -= 1,
                Event::Text(t) => {
                    let text = t.unescape().map_err(Fault::syntax)?;
                    if (depth == 0 || !content) && !is_blank(&text) {
                        if depth == 0 {
                            return Err(Fault::TextOutside);
                        }
                        content = true;
                    }
                }
                Event::CData(c) => {
                    let text = std::str::from_utf8(&c).map_err(Fault::syntax)?;
                    if (depth == 0 || !content) && !is_blank(text) {
                        if depth == 0 {
                            return Err(Fault::TextOutside);
                        }
                        content = true;
                    }
                }
                Event::PI(p) => return Err(Fault::Pi(lossy(p.target()))),
                Event::DocType(_) => return Err(Fault::Dtd),
                Event::Decl(_) => return Err(Fault::XmlDecl),
                Event::Eof if depth > 0 => return Err(Fault::Unclosed),
                Event::Eof => break,
                Event::Comment(_) => {}
            }
        }
        if !seen_root {
            return Err(Fault::NotDiv);
        }
        if !content {
            return Err(Fault::Empty);
        }
        Ok(())
    }

    /// The attributes of an allowed element `el` (its local name).
    fn attributes(&mut self, e: &BytesStart<'_>, el: &[u8]) -> Result<(), Fault> {
        for a in e.attributes() {
            let a = a.map_err(Fault::syntax)?;
            let value = a.unescape_value().map_err(Fault::syntax)?;
            let key = a.key.as_ref();
            if key.len() > 2 && key[..2].eq_ignore_ascii_case(b"on") {
                return Err(Fault::Handler(lossy(e.name().as_ref()), lossy(key)));
            }
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                // Only the XHTML namespace may be declared (as the default, or for a prefix
                // such as `xmlns:xhtml`); anything else (xlink, svg, …) brings foreign markup.
                if value.as_bytes() != XHTML_NS.as_bytes() {
                    return Err(Fault::NsDecl(lossy(e.name().as_ref()), lossy(key), value.into_owned()));
                }
                continue;
            }
            if !allowed_attribute(el, key) {
                return Err(Fault::Attribute(lossy(e.name().as_ref()), lossy(key)));
            }
            match key {
                b"href" | b"src" | b"cite" | b"longdesc" | b"usemap" => {
                    let data_image = el == b"img" && key == b"src";
                    if let Err(scheme) = safe_url(&value, data_image) {
                        return Err(Fault::Url(lossy(e.name().as_ref()), lossy(key), scheme));
                    }
                }
                b"style" => {
                    if let Some(what) = self.unsafe_style(&value) {
                        return Err(Fault::Style(lossy(e.name().as_ref()), what));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What makes an inline style executable or external, if anything. The value is
    /// normalised first (CSS escapes decoded, comments and whitespace removed, lower case)
    /// so that `e\78pression(`, `expr/**/ession(` and `BEHAVIOR :` are all seen.
    fn unsafe_style(&mut self, style: &str) -> Option<&'static str> {
        let css = &mut self.css;
        css.clear();
        let s = style.as_bytes();
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            i += 1;
            match b {
                b'/' if s.get(i) == Some(&b'*') => {
                    i = match find(&s[i + 1..], b"*/") {
                        Some(at) => i + 1 + at + 2,
                        None => s.len(),
                    };
                }
                b'\\' => {
                    let digits = s[i..].iter().take(6).take_while(|b| b.is_ascii_hexdigit()).count();
                    if digits == 0 {
                        // `\x` is `x` (a line break after `\` is nothing, and is dropped below).
                        if let Some(&next) = s.get(i) {
                            i += 1;
                            push_css(css, next);
                        }
                        continue;
                    }
                    let hex = std::str::from_utf8(&s[i..i + digits]).unwrap_or("0");
                    let code = u32::from_str_radix(hex, 16).unwrap_or(0xfffd);
                    i += digits;
                    if s.get(i).is_some_and(u8::is_ascii_whitespace) {
                        i += 1;
                    }
                    let c = char::from_u32(code).unwrap_or('\u{fffd}');
                    let mut utf8 = [0u8; 4];
                    for &b in c.encode_utf8(&mut utf8).as_bytes() {
                        push_css(css, b);
                    }
                }
                b => push_css(css, b),
            }
        }
        let css = &css[..];
        // An unsafe `url(…)` is reported only when no named construct is found.
        let mut bad_url = None;
        for (at, &b) in css.iter().enumerate() {
            let rest = &css[at..];
            let hit = match b {
                b'e' => rest.starts_with(b"expression(").then_some("expression("),
                b'b' if rest.starts_with(b"behavior:") => Some("behavior:"),
                b'b' => rest.starts_with(b"behaviour:").then_some("behaviour:"),
                b'-' => rest.starts_with(b"-moz-binding").then_some("-moz-binding"),
                b'j' => rest.starts_with(b"javascript:").then_some("javascript:"),
                b'v' => rest.starts_with(b"vbscript:").then_some("vbscript:"),
                b'@' => rest.starts_with(b"@import").then_some("@import"),
                b'u' if rest.starts_with(b"url(") => {
                    let inner = &rest[4..];
                    let inner = &inner[..inner.iter().position(|&b| b == b')').unwrap_or(inner.len())];
                    let url = inner.strip_prefix(b"\"").or_else(|| inner.strip_prefix(b"'")).unwrap_or(inner);
                    let url = url.strip_suffix(b"\"").or_else(|| url.strip_suffix(b"'")).unwrap_or(url);
                    if safe_url_bytes(url, true).is_err() {
                        bad_url = Some("url(");
                    }
                    None
                }
                _ => None,
            };
            if hit.is_some() {
                return hit;
            }
        }
        bad_url
    }
}

/// Appends one byte of a style to its normalised form: whitespace and control characters
/// dropped, ASCII lower-cased, anything else kept.
fn push_css(css: &mut Vec<u8>, b: u8) {
    if b > 0x20 && b != 0x7f {
        css.push(b.to_ascii_lowercase());
    }
}

/// txt-1's elements: the HTML 4.0 formatting elements of chapters 7-11 (without 9.4) and
/// 12 (without 12.3), `<a>` and `<img>` — the list HL7's validator applies.
fn allowed_element(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"br"
            | b"div"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"a"
            | b"span"
            | b"b"
            | b"em"
            | b"i"
            | b"strong"
            | b"small"
            | b"big"
            | b"tt"
            | b"dfn"
            | b"q"
            | b"var"
            | b"abbr"
            | b"acronym"
            | b"cite"
            | b"blockquote"
            | b"hr"
            | b"address"
            | b"bdo"
            | b"kbd"
            | b"sub"
            | b"sup"
            | b"ul"
            | b"ol"
            | b"li"
            | b"dl"
            | b"dt"
            | b"dd"
            | b"pre"
            | b"table"
            | b"caption"
            | b"colgroup"
            | b"col"
            | b"thead"
            | b"tr"
            | b"tfoot"
            | b"tbody"
            | b"th"
            | b"td"
            | b"code"
            | b"samp"
            | b"img"
            | b"map"
            | b"area"
    )
}

/// txt-1's attributes: those allowed on every narrative element, then those of one element.
fn allowed_attribute(el: &[u8], attr: &[u8]) -> bool {
    let everywhere = matches!(
        attr,
        b"title"
            | b"style"
            | b"class"
            | b"id"
            | b"lang"
            | b"xml:lang"
            | b"dir"
            | b"accesskey"
            | b"tabindex"
            | b"span"
            | b"width"
            | b"align"
            | b"valign"
            | b"char"
            | b"charoff"
            | b"abbr"
            | b"axis"
            | b"headers"
            | b"scope"
            | b"rowspan"
            | b"colspan"
            | b"border"
            | b"cellpadding"
            | b"cellspacing"
            | b"frame"
            | b"rules"
            | b"summary"
    );
    everywhere
        || match el {
            b"a" => matches!(
                attr,
                b"href" | b"name" | b"rel" | b"rev" | b"shape" | b"coords" | b"charset" | b"hreflang" | b"type"
            ),
            b"img" => matches!(attr, b"src" | b"alt" | b"height" | b"width" | b"usemap" | b"ismap" | b"longdesc"),
            b"area" => matches!(attr, b"href" | b"alt" | b"shape" | b"coords" | b"nohref"),
            // `usemap="#name"` on an image refers to the map by this attribute.
            b"map" => attr == b"name",
            b"ol" | b"ul" | b"li" => matches!(attr, b"type" | b"start" | b"value" | b"compact"),
            b"table" => attr == b"bgcolor",
            b"blockquote" | b"q" => attr == b"cite",
            _ => false,
        }
}

/// Whether a URL attribute's value is safe to follow: a relative reference, a fragment, or
/// one of the schemes http, https, ftp, mailto, tel, urn — and, where `data_image` (an
/// image's `src`), a base64 `data:image/…` (not SVG). The scheme is read as browsers read
/// it: ASCII whitespace and control characters anywhere are ignored, case does not matter.
/// Character references are already decoded by the caller. The error is the scheme seen.
fn safe_url(value: &str, data_image: bool) -> Result<(), String> {
    safe_url_bytes(value.as_bytes(), data_image)
}

fn safe_url_bytes(value: &[u8], data_image: bool) -> Result<(), String> {
    let mut it = value.iter().copied().filter(|&b| b > 0x20 && b != 0x7f);
    let mut scheme = [0u8; 16];
    let mut n = 0usize;
    let mut long = false;
    loop {
        match it.next() {
            // No scheme: a relative reference (path, `?query`, `#fragment`, `//host`).
            None | Some(b'/' | b'?' | b'#') => return Ok(()),
            Some(b':') => break,
            Some(b) if n < scheme.len() => {
                scheme[n] = b.to_ascii_lowercase();
                n += 1;
            }
            Some(_) => long = true,
        }
    }
    let seen = || format!("{}{}:", String::from_utf8_lossy(&scheme[..n]), if long { "…" } else { "" });
    if long {
        return Err(seen());
    }
    match &scheme[..n] {
        b"http" | b"https" | b"ftp" | b"mailto" | b"tel" | b"urn" => Ok(()),
        b"data" if data_image => {
            // `data:image/<subtype>[;params];base64,` — the media type, lower-cased.
            let mut media = [0u8; 64];
            let mut m = 0usize;
            loop {
                match it.next() {
                    Some(b',') => break,
                    Some(b) if m < media.len() => {
                        media[m] = b.to_ascii_lowercase();
                        m += 1;
                    }
                    _ => return Err("data:".into()),
                }
            }
            let media = &media[..m];
            let subtype = media.strip_prefix(b"image/").map(|s| s.split(|&b| b == b';').next().unwrap_or_default());
            match subtype {
                Some(s) if !s.is_empty() && s != b"svg+xml" && media.ends_with(b";base64") => Ok(()),
                _ => Err(format!("data:{}", String::from_utf8_lossy(media))),
            }
        }
        _ => Err(seen()),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An internal reference in a narrative: a hyperlink `<a href="#…">` or an image
/// `<img src="#…">` (a bare `#` names the page itself and is not one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalLink {
    /// `true` for an image source, `false` for a hyperlink.
    pub image: bool,
    /// The fragment, without `#`.
    pub target: String,
    /// The hyperlink's text with whitespace collapsed (empty for an image), for messages.
    pub text: String,
}

/// The internal references of a narrative, in document order. Only the XHTML is read:
/// whether a target exists elsewhere in the resource is the validator's question. A
/// narrative that is not well-formed yields the links before the fault (the structure check
/// reports the fault). Narratives with no attribute value starting with `#` are not parsed.
pub fn internal_links(div: &str) -> Vec<InternalLink> {
    let mut out = Vec::new();
    if !div.contains("\"#") && !div.contains("'#") {
        return out;
    }
    let mut r = Reader::from_str(div);
    // The open internal hyperlink whose text is being collected, and its nesting depth.
    let mut open: Option<(usize, InternalLink)> = None;
    let mut depth = 0usize;
    while let Ok(ev) = r.read_event() {
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                let (image, attr): (bool, &[u8]) = match local.as_ref() {
                    b"a" => (false, b"href"),
                    b"img" => (true, b"src"),
                    _ => (false, b""),
                };
                let target = (!attr.is_empty())
                    .then(|| e.try_get_attribute(attr).ok().flatten())
                    .flatten()
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                    .and_then(|v| v.strip_prefix('#').filter(|t| !t.is_empty()).map(str::to_owned));
                let started = matches!(ev, Event::Start(_));
                if let Some(target) = target {
                    let link = InternalLink { image, target, text: String::new() };
                    if started && !image && open.is_none() {
                        open = Some((depth, link));
                    } else {
                        out.push(link);
                    }
                }
                if started {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if open.as_ref().is_some_and(|(d, _)| *d == depth) {
                    let (_, mut link) = open.take().expect("checked");
                    link.text = link.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    out.push(link);
                }
            }
            Event::Text(t) => {
                if let Some((_, link)) = open.as_mut() {
                    if let Ok(text) = t.unescape() {
                        link.text.push_str(&text);
                        link.text.push(' ');
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some((_, link)) = open {
        out.push(link);
    }
    out
}

/// Calls `found` with every name an internal reference can point to in `div`: the `id` of
/// any element and the `name` of an `<a>` (HTML 4.0 §12.2.3 anchors). Stops quietly at a
/// well-formedness fault.
pub fn link_targets(div: &str, found: &mut dyn FnMut(&str)) {
    if !div.contains("id=") && !div.contains("id =") && !div.contains("name") {
        return;
    }
    let mut r = Reader::from_str(div);
    while let Ok(ev) = r.read_event() {
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_a = e.local_name().as_ref() == b"a";
                for a in e.attributes().flatten() {
                    let key = a.key.local_name();
                    if key.as_ref() == b"id" || (is_a && key.as_ref() == b"name") {
                        if let Ok(v) = a.unescape_value() {
                            found(&v);
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
}

/// A broken narrative rule, rendered in English or Japanese.
enum Fault {
    Syntax(String),
    NotDiv,
    NotSingle,
    NoXmlns,
    TextOutside,
    Dtd,
    XmlDecl,
    Unclosed,
    /// Processing instruction (target).
    Pi(String),
    /// Element not in txt-1's list (qualified name).
    Element(String),
    /// Element outside the XHTML namespace (qualified name, namespace or "").
    Foreign(String, String),
    /// Attribute not allowed on the element (element, attribute).
    Attribute(String, String),
    /// Event handler attribute (element, attribute).
    Handler(String, String),
    /// Declaration of a namespace other than XHTML (element, attribute, value).
    NsDecl(String, String, String),
    /// URL with a refused scheme (element, attribute, scheme).
    Url(String, String, String),
    /// Style with an executable or external construct (element, construct).
    Style(String, &'static str),
    /// txt-2.
    Empty,
}

impl Fault {
    fn syntax(e: impl std::fmt::Display) -> Fault {
        Fault::Syntax(e.to_string())
    }

    fn foreign(name: &[u8], ns: &[u8]) -> Fault {
        Fault::Foreign(lossy(name), lossy(ns))
    }

    fn en(&self) -> String {
        match self {
            Fault::Syntax(e) => format!("narrative is not well-formed XHTML: {e}"),
            Fault::NotDiv => "narrative must be a <div> element".into(),
            Fault::NotSingle => "narrative must be a single <div> element".into(),
            Fault::NoXmlns => format!("narrative <div> must declare xmlns=\"{XHTML_NS}\""),
            Fault::TextOutside => "text outside the narrative <div>".into(),
            Fault::Dtd => "DTDs are not allowed in narrative".into(),
            Fault::XmlDecl => "XML declaration inside narrative".into(),
            Fault::Unclosed => "narrative has an unclosed element".into(),
            Fault::Pi(t) => format!("processing instruction <?{t}?> is not allowed in narrative (txt-1)"),
            Fault::Element(n) => format!("element <{n}> is not allowed in narrative (txt-1)"),
            Fault::Foreign(n, ns) if ns.is_empty() => {
                format!("element <{n}> is in no namespace; narrative elements must be XHTML (txt-1)")
            }
            Fault::Foreign(n, ns) => {
                format!("element <{n}> is in the namespace '{ns}'; narrative elements must be XHTML (txt-1)")
            }
            Fault::Attribute(e, a) => format!("attribute '{a}' is not allowed on <{e}> in narrative (txt-1)"),
            Fault::Handler(e, a) => {
                format!("event handler attribute '{a}' on <{e}> is not allowed in narrative (txt-1)")
            }
            Fault::NsDecl(e, a, v) => format!(
                "namespace declaration {a}=\"{}\" on <{e}> is not allowed in narrative: only the XHTML \
                 namespace may be declared (txt-1)",
                short(v)
            ),
            Fault::Url(e, a, s) => format!(
                "attribute '{a}' on <{e}> uses the URL scheme '{s}', which is not allowed in narrative \
                 (only http, https, ftp, mailto, tel, urn, relative references, and base64 data:image \
                 on <img src>) (txt-1)"
            ),
            Fault::Style(e, w) => {
                format!("style attribute on <{e}> contains '{w}', which is not allowed in narrative (txt-1)")
            }
            Fault::Empty => "narrative has no content: it needs some non-whitespace text or an image (txt-2)".into(),
        }
    }

    fn ja(&self) -> String {
        match self {
            Fault::Syntax(e) => format!("ナラティブが整形式の XHTML ではありません: {e}"),
            Fault::NotDiv => "ナラティブは <div> 要素でなければなりません".into(),
            Fault::NotSingle => "ナラティブは単一の <div> 要素でなければなりません".into(),
            Fault::NoXmlns => format!("ナラティブの <div> には xmlns=\"{XHTML_NS}\" の宣言が必要です"),
            Fault::TextOutside => "ナラティブの <div> の外にテキストがあります".into(),
            Fault::Dtd => "ナラティブに DTD は使えません".into(),
            Fault::XmlDecl => "ナラティブの中に XML 宣言は置けません".into(),
            Fault::Unclosed => "ナラティブに閉じられていない要素があります".into(),
            Fault::Pi(t) => format!("ナラティブに処理命令 <?{t}?> は使えません（txt-1）"),
            Fault::Element(n) => format!("ナラティブに <{n}> 要素は使えません（txt-1）"),
            Fault::Foreign(n, ns) if ns.is_empty() => {
                format!("ナラティブの <{n}> 要素が名前空間に属していません。XHTML の要素でなければなりません（txt-1）")
            }
            Fault::Foreign(n, ns) => {
                format!("ナラティブの <{n}> 要素は名前空間 '{ns}' に属しています。XHTML の要素でなければなりません（txt-1）")
            }
            Fault::Attribute(e, a) => format!("ナラティブの <{e}> 要素に属性 '{a}' は使えません（txt-1）"),
            Fault::Handler(e, a) => format!("ナラティブの <{e}> 要素にイベントハンドラ属性 '{a}' は使えません（txt-1）"),
            Fault::NsDecl(e, a, v) => format!(
                "ナラティブの <{e}> 要素の名前空間宣言 {a}=\"{}\" は使えません。宣言できるのは XHTML の名前空間だけです（txt-1）",
                short(v)
            ),
            Fault::Url(e, a, s) => format!(
                "ナラティブの <{e}> 要素の属性 '{a}' に URL スキーム '{s}' は使えません（使えるのは http・https・ftp・mailto・tel・urn、\
                 相対参照、<img src> の base64 の data:image のみ）（txt-1）"
            ),
            Fault::Style(e, w) => format!("ナラティブの <{e}> 要素の style 属性に '{w}' は使えません（txt-1）"),
            Fault::Empty => "ナラティブに内容がありません。空白以外のテキストか画像が必要です（txt-2）".into(),
        }
    }
}

/// A value quoted in a message, cut to a readable length.
fn short(v: &str) -> &str {
    match v.char_indices().nth(80) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}
