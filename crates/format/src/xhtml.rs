//! Narrative XHTML (`Narrative.div`): JSON carries it as a string, XML embeds it. Both
//! directions keep the exact text, so the only work is making sure it is well-formed
//! XHTML that can be embedded without breaking the surrounding document.

use quick_xml::events::Event;
use quick_xml::Reader;

pub(crate) const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Checks that `div` is one well-formed `<div>` element in the XHTML namespace, with no
/// DTD and no entity other than XML's predefined ones.
pub(crate) fn check(div: &str) -> Result<(), String> {
    let mut r = Reader::from_str(div);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let ev = r.read_event().map_err(|e| format!("narrative is not well-formed XHTML: {e}"))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 {
                    if seen_root {
                        return Err("narrative must be a single <div> element".into());
                    }
                    seen_root = true;
                    if e.name().as_ref() != b"div" {
                        return Err("narrative must be a <div> element".into());
                    }
                    let ns = e
                        .try_get_attribute("xmlns")
                        .map_err(|e| format!("narrative is not well-formed XHTML: {e}"))?
                        .map(|a| a.value.into_owned());
                    if ns.as_deref() != Some(XHTML_NS.as_bytes()) {
                        return Err(format!("narrative <div> must declare xmlns=\"{XHTML_NS}\""));
                    }
                }
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("narrative is not well-formed XHTML: {e}"))?;
                    a.unescape_value().map_err(|e| format!("narrative is not well-formed XHTML: {e}"))?;
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err("text outside the narrative <div>".into());
                }
                t.unescape().map_err(|e| format!("narrative is not well-formed XHTML: {e}"))?;
            }
            Event::DocType(_) => return Err("DTDs are not allowed in narrative".into()),
            Event::Decl(_) => return Err("XML declaration inside narrative".into()),
            Event::Eof if depth > 0 => return Err("narrative has an unclosed element".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err("narrative must be a <div> element".into());
    }
    Ok(())
}
