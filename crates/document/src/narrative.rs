//! Narratives (`text.div`) on the page.
//!
//! A narrative is shown as markup only when it passes FHIR's narrative rules
//! ([`tsunagu_format::check_narrative`]: allowed elements and attributes, no script, handler,
//! executable URL or unsafe style). Even then it is never copied through: it is parsed and
//! re-emitted from this crate's own list of elements, with only a handful of harmless
//! attributes, so what reaches the page is what this file writes. Images are replaced by
//! their alt text (the page loads nothing), inline styles and ids are dropped (they would
//! fight the page's CSS and anchors), and links keep only `http(s)` targets.
//!
//! A narrative that fails the rules, or cannot be parsed, is shown as its words only:
//! tags removed, the content of script-like elements dropped, entities decoded, the result
//! escaped. The reader still sees what the author wrote, never what an attacker hid.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::escape::Html;
use crate::labels::Labels;

/// Writes `div` (the string of `Narrative.div`).
pub(crate) fn narrative(h: &mut Html, div: &str, t: &Labels) {
    if tsunagu_format::check_narrative(div).is_ok() {
        let mut out = Html::with_capacity(div.len() + 64);
        if reemit(&mut out, div, t).is_some() {
            h.append(out);
            return;
        }
    }
    h.raw("<div class=\"narrative unsafe\"><p class=\"warning\">");
    h.text(t.narrative_unsafe);
    h.raw("</p><p class=\"plain\">");
    h.text(plain_text(div).trim());
    h.raw("</p></div>");
}

/// What an element of the narrative becomes on the page, if anything.
#[derive(Clone, Copy)]
enum Out {
    /// Written as this element.
    Tag(&'static str),
    /// A void element (`<br>`, `<hr>`, `<col>`): no end tag.
    Void(&'static str),
    /// Not written; its content is.
    Drop,
}

fn map_element(local: &[u8]) -> Out {
    use Out::*;
    match local {
        b"p" => Tag("p"),
        b"div" => Tag("div"),
        b"span" | b"bdo" | b"big" | b"map" => Tag("span"),
        // A narrative's own headings sit below the section's heading.
        b"h1" | b"h2" | b"h3" => Tag("h5"),
        b"h4" | b"h5" | b"h6" => Tag("h6"),
        b"a" => Tag("a"),
        b"b" => Tag("b"),
        b"strong" => Tag("strong"),
        b"em" => Tag("em"),
        b"i" => Tag("i"),
        b"small" => Tag("small"),
        b"tt" | b"code" => Tag("code"),
        b"samp" => Tag("samp"),
        b"kbd" => Tag("kbd"),
        b"var" => Tag("var"),
        b"dfn" => Tag("dfn"),
        b"q" => Tag("q"),
        b"abbr" | b"acronym" => Tag("abbr"),
        b"cite" => Tag("cite"),
        b"blockquote" => Tag("blockquote"),
        b"address" => Tag("address"),
        b"sub" => Tag("sub"),
        b"sup" => Tag("sup"),
        b"ul" => Tag("ul"),
        b"ol" => Tag("ol"),
        b"li" => Tag("li"),
        b"dl" => Tag("dl"),
        b"dt" => Tag("dt"),
        b"dd" => Tag("dd"),
        b"pre" => Tag("pre"),
        b"table" => Tag("table"),
        b"caption" => Tag("caption"),
        b"colgroup" => Tag("colgroup"),
        b"thead" => Tag("thead"),
        b"tbody" => Tag("tbody"),
        b"tfoot" => Tag("tfoot"),
        b"tr" => Tag("tr"),
        b"th" => Tag("th"),
        b"td" => Tag("td"),
        b"br" => Void("br"),
        b"hr" => Void("hr"),
        b"col" => Void("col"),
        _ => Drop,
    }
}

/// Re-emits a narrative that passed the rules; `None` if it cannot be parsed after all (the
/// caller then shows its words only).
fn reemit(h: &mut Html, div: &str, t: &Labels) -> Option<()> {
    let mut reader = Reader::from_str(div);
    let mut stack: Vec<Out> = Vec::with_capacity(16);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let out = start(h, &e, stack.is_empty(), t)?;
                stack.push(out);
            }
            Event::Empty(e) => match start(h, &e, stack.is_empty(), t)? {
                Out::Tag(tag) => end(h, tag),
                Out::Void(_) | Out::Drop => {}
            },
            Event::End(_) => {
                if let Out::Tag(tag) = stack.pop()? {
                    end(h, tag);
                }
            }
            Event::Text(text) => h.text(&text.unescape().ok()?),
            Event::CData(data) => h.text(std::str::from_utf8(&data).ok()?),
            Event::Eof => break,
            // Comments, processing instructions, declarations: not content.
            _ => {}
        }
    }
    stack.is_empty().then_some(())
}

/// Writes the start tag for `e` (the root becomes the narrative's container) and says how
/// its end is written.
fn start(h: &mut Html, e: &BytesStart<'_>, root: bool, t: &Labels) -> Option<Out> {
    if root {
        h.raw("<div class=\"narrative\">");
        return Some(Out::Tag("div"));
    }
    let name = e.name();
    let local = name.local_name();
    if local.as_ref() == b"img" {
        // Nothing is loaded from anywhere: the image becomes its description.
        let alt = attribute(e, b"alt")?;
        h.raw("<span class=\"img\">[");
        h.text(t.image);
        if let Some(alt) = alt.as_deref().filter(|a| !a.trim().is_empty()) {
            h.raw(": ");
            h.text(alt);
        }
        h.raw("]</span>");
        return Some(Out::Drop);
    }
    let out = map_element(local.as_ref());
    let tag = match out {
        Out::Tag(tag) | Out::Void(tag) => tag,
        Out::Drop => return Some(out),
    };
    h.raw("<");
    h.raw(tag);
    match tag {
        "a" => {
            if let Some(href) = attribute(e, b"href")?.filter(|u| web_url(u)) {
                h.raw(" href=\"");
                h.text(href.trim());
                h.raw("\" rel=\"noopener noreferrer\"");
            }
        }
        "td" | "th" => {
            for (key, raw) in [(b"colspan".as_slice(), " colspan=\""), (b"rowspan".as_slice(), " rowspan=\"")] {
                if let Some(n) = attribute(e, key)?.filter(|n| small_number(n)) {
                    h.raw(raw);
                    h.text(&n);
                    h.raw("\"");
                }
            }
        }
        _ => {}
    }
    h.raw(">");
    Some(out)
}

fn end(h: &mut Html, tag: &'static str) {
    h.raw("</");
    h.raw(tag);
    h.raw(">");
}

/// The decoded value of attribute `key`; `None` when the attributes cannot be read,
/// `Some(None)` when it is absent.
fn attribute(e: &BytesStart<'_>, key: &[u8]) -> Option<Option<String>> {
    for a in e.attributes() {
        let a = a.ok()?;
        if a.key.as_ref() == key {
            return Some(Some(a.unescape_value().ok()?.into_owned()));
        }
    }
    Some(None)
}

/// Only ordinary web links stay links: no `javascript:`, `data:`, relative or odd schemes.
fn web_url(url: &str) -> bool {
    let u = url.trim();
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !u.chars().any(|c| c.is_control() || c == ' ')
}

fn small_number(n: &str) -> bool {
    !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
}

/// The words of markup that may be broken or hostile: tags removed, the content of
/// script, style and similar elements dropped, block-level tags turned into line breaks,
/// character references decoded. Works on any string (no XML parse), so it cannot fail.
pub(crate) fn plain_text(markup: &str) -> String {
    const HIDDEN: [&str; 8] = ["script", "style", "iframe", "object", "embed", "template", "noscript", "textarea"];
    let mut out = String::with_capacity(markup.len());
    let mut rest = markup;
    while let Some(lt) = rest.find('<') {
        decode_into(&mut out, &rest[..lt]);
        let tag = &rest[lt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        // The end of this tag (or comment); an unclosed one swallows the rest.
        let after = if tag.starts_with("!--") {
            tag.find("-->").map_or(tag.len(), |i| i + 3)
        } else {
            tag.find('>').map_or(tag.len(), |i| i + 1)
        };
        rest = &tag[after..];
        if !closing && HIDDEN.contains(&name.as_str()) {
            // Skip to the matching end tag, whatever is inside.
            let lower = rest.to_ascii_lowercase();
            let close = format!("</{name}");
            rest = match lower.find(&close) {
                Some(at) => {
                    let tail = &rest[at..];
                    &tail[tail.find('>').map_or(tail.len(), |i| i + 1)..]
                }
                None => "",
            };
            continue;
        }
        if matches!(name.as_str(), "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
            && !out.ends_with('\n')
        {
            out.push('\n');
        }
    }
    decode_into(&mut out, rest);
    out
}

/// Appends `s` with XML/HTML character references decoded (the predefined five and
/// numeric ones; any other `&name;` is kept as written).
fn decode_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        // A reference is short; a `;` further on is ordinary text.
        let semi = tail.bytes().take(12).position(|b| b == b';');
        let decoded = semi.and_then(|semi| {
            let name = &tail[1..semi];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let n = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::JA;

    fn render(div: &str) -> String {
        let mut h = Html::with_capacity(0);
        narrative(&mut h, div, &JA);
        h.into_string()
    }

    #[test]
    fn safe_narrative_is_reemitted_without_styles_or_images() {
        let out = render(
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p style="color:red" id="x">上腹部痛&amp;腰痛</p><img src="https://tracker.example/p.gif" alt="図"/><a href="https://example.org/a?b=1&amp;c=2">リンク</a><br/><table><tr><td colspan="2">A</td></tr></table></div>"#,
        );
        assert_eq!(
            out,
            "<div class=\"narrative\"><p>上腹部痛&amp;腰痛</p><span class=\"img\">[画像: 図]</span><a href=\"https://example.org/a?b=1&amp;c=2\" rel=\"noopener noreferrer\">リンク</a><br><table><tr><td colspan=\"2\">A</td></tr></table></div>"
        );
    }

    #[test]
    fn unsafe_narrative_shows_words_only() {
        let out = render(
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="steal()">見る</p><script>alert(1)</script><a href="javascript:alert(2)">ここ</a><iframe src="x"></iframe>&lt;b&gt;</div>"#,
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("alert"), "{out}");
        assert!(out.contains("見る"), "{out}");
        assert!(out.contains("ここ"), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
    }

    #[test]
    fn broken_markup_shows_words_only() {
        let out = render("<div><p>未閉鎖 <b>太字</p>");
        assert!(out.contains("未閉鎖 太字"), "{out}");
        assert!(!out.contains("<b>"), "{out}");
        assert_eq!(plain_text("a<script>x</SCRIPT >b<!-- c -->d"), "abd");
        assert_eq!(plain_text("&#x41;&amp;&bogus;&日本語の文章です;&"), "A&&bogus;&日本語の文章です;&");
    }
}
