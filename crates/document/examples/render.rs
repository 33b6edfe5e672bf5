//! Renders a document Bundle file to stdout: `cargo run -p tsunagu-document --example render -- FILE [en]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: render FILE [en]");
    let text = std::fs::read_to_string(&path).expect("read");
    let bundle: serde_json::Value = serde_json::from_str(&text).expect("json");
    let lang =
        if args.next().as_deref() == Some("en") { tsunagu_document::Lang::En } else { tsunagu_document::Lang::Ja };
    let options = tsunagu_document::RenderOptions { lang, base_url: None };
    match tsunagu_document::render_html(&bundle, &options) {
        Ok(html) => print!("{html}"),
        Err(e) => eprintln!("{}", e.message_ja()),
    }
}
