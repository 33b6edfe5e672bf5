//! Regular expressions (`matches()`, `matchesFull()`, `replaceMatches()`) are bounded one
//! by one (`max_regex_bytes`) and all together (`regex_cache_bytes`), without changing what
//! they match.
//!
//! The limits and the cache are process-wide, so the tests of this binary take turns
//! (`serial()`) and each sets the limits it needs first.

use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};
use tsunagu_fhirpath::{compile, regex_cache_bytes_in_use, set_regex_limits, to_json_output, ErrorKind, FhirPathError};
use tsunagu_limits::Limits;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn defaults() {
    let l = Limits::default();
    set_regex_limits(l.max_regex_bytes, l.regex_cache_bytes);
}

/// FHIRPath string literal for `s`.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
}

fn eval(src: &str) -> Result<Value, FhirPathError> {
    let resource = json!({"resourceType": "Basic"});
    let expr = compile(src)?;
    let items = expr.evaluate(&resource)?;
    Ok(to_json_output(&items))
}

fn eval_bool(src: &str) -> bool {
    match eval(src).unwrap_or_else(|e| panic!("{src}: {e}")) {
        Value::Array(a) if a.len() == 1 => a[0]["value"].as_bool().unwrap_or_else(|| panic!("{src}: {a:?}")),
        v => panic!("{src}: {v}"),
    }
}

fn eval_str(src: &str) -> String {
    match eval(src).unwrap_or_else(|e| panic!("{src}: {e}")) {
        Value::Array(a) if a.len() == 1 => a[0]["value"].as_str().unwrap_or_else(|| panic!("{src}: {a:?}")).to_string(),
        v => panic!("{src}: {v}"),
    }
}

#[test]
fn a_regex_compiled_past_max_regex_bytes_is_an_execution_error_naming_the_limit() {
    let _g = serial();
    // Short pattern, large compiled form: fine under the default limit...
    defaults();
    assert!(!eval_bool("'x'.matches('a{5000}')"));
    // ...refused under a small one, by every regex function, naming the limit and its value.
    set_regex_limits(10_000, 1 << 20);
    for src in ["'x'.matches('a{5000}')", "'x'.matchesFull('a{5000}')", "'x'.replaceMatches('a{5000}', 'b')"] {
        let e = eval(src).expect_err(src);
        assert_eq!(e.kind(), ErrorKind::Execution, "{src}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("max_regex_bytes") && msg.contains("10000"), "{src}: {msg}");
        assert!(!msg.contains("invalid regex"), "{src}: {msg}");
    }
    // A pattern longer than the limit is refused before compiling, whatever it is.
    let long = format!("'x'.matches('{}')", "x".repeat(10_001));
    let msg = eval(&long).expect_err("long pattern").to_string();
    assert!(msg.contains("max_regex_bytes") && msg.contains("10000") && msg.contains("10001"), "{msg}");
    // Small patterns still work under the small limit; syntax errors stay syntax errors.
    assert!(eval_bool("'abc'.matches('^[a-c]+$')"));
    let msg = eval("'x'.matches('(')").expect_err("invalid").to_string();
    assert!(msg.contains("invalid regex") && !msg.contains("max_regex_bytes"), "{msg}");
    defaults();
}

/// `'x'.matches(p)` for distinct patterns of a few KiB compiled each.
fn distinct_pattern(i: usize) -> String {
    format!("^(?:b{{{}}}|x)$", 100 + i)
}

#[test]
fn the_cache_of_compiled_regexes_stays_within_regex_cache_bytes() {
    let _g = serial();
    const N: usize = 200;
    // With room for all of them, they take several times the small budget used below.
    set_regex_limits(1 << 20, 1 << 30);
    for i in 0..N {
        assert!(eval_bool(&format!("'x'.matches({})", lit(&distinct_pattern(i)))));
    }
    let all = regex_cache_bytes_in_use();
    let budget = 256 * 1024;
    assert!(all > 4 * budget, "{N} patterns take {all} bytes");

    // With the small budget, every step stays within it, results stay right, and the cache
    // keeps being used (it is not simply off).
    set_regex_limits(1 << 20, budget);
    assert_eq!(regex_cache_bytes_in_use(), 0, "changing the limits empties the cache");
    for i in 0..N {
        let p = lit(&distinct_pattern(i));
        assert!(eval_bool(&format!("'x'.matches({p})")));
        assert!(!eval_bool(&format!("'y'.matches({p})")));
        assert!(eval_bool(&format!("'{}'.matchesFull({p})", "b".repeat(100 + i))));
        let used = regex_cache_bytes_in_use();
        assert!(used <= budget, "pattern {i}: {used} bytes in use, budget {budget}");
        assert!(used > 0, "pattern {i}: nothing cached");
    }

    // A regex larger than the whole budget is used once and not kept.
    set_regex_limits(1 << 20, 1024);
    assert!(eval_bool("'x'.matches('^(?:b{100}|x)$')"));
    assert!(eval_bool("'x'.matches('^(?:b{100}|x)$')"));
    assert_eq!(regex_cache_bytes_in_use(), 0);
    defaults();
}

#[test]
fn many_threads_share_one_bounded_cache() {
    let _g = serial();
    let budget = 128 * 1024;
    set_regex_limits(1 << 20, budget);
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..100 {
                    // A few hot patterns shared by all threads, and cold ones.
                    let p = lit(&distinct_pattern(if i % 2 == 0 { i % 6 } else { t * 50 + i }));
                    assert!(eval_bool(&format!("'x'.matches({p})")));
                    assert!(!eval_bool(&format!("'xx'.matches({p})")));
                    assert_eq!(eval_str(&format!("'axb'.replaceMatches({p}, '-')")), "axb");
                    assert_eq!(eval_str(&format!("'x'.replaceMatches({p}, '<$0>')")), "<x>");
                }
            });
        }
    });
    let used = regex_cache_bytes_in_use();
    assert!(used > 0 && used <= budget, "{used} bytes in use, budget {budget}");
    defaults();
}

#[test]
fn matching_and_replacing_mean_what_they_meant() {
    let _g = serial();
    defaults();
    // matches(): anywhere, `.` matches newlines; matchesFull(): the whole string.
    assert!(eval_bool("'abc'.matches('b')"));
    assert!(!eval_bool("'abc'.matchesFull('b')"));
    assert!(eval_bool("'abc'.matchesFull('a.c')"));
    assert!(eval_bool("'a\\nc'.matches('a.c')"));
    assert!(eval_bool("'a\\nc'.matchesFull('a.c')"));
    assert!(eval_bool("'c'.matchesFull('ab|c')"));
    assert!(!eval_bool("'abx'.matchesFull('ab|c')"), "matchesFull groups the whole pattern");
    assert!(!eval_bool("'xc'.matchesFull('ab|c')"), "matchesFull groups the whole pattern");
    assert!(eval_bool("'Ünïcödé'.matches('^\\\\w+$')"));
    assert!(eval_bool("'Peter'.matches('[A-Z]([A-Za-z0-9_]){0,254}')"));
    assert_eq!(eval("''.matches({})").unwrap(), json!([]));
    assert_eq!(eval("{}.matches('a')").unwrap(), json!([]));
    // The same expression again (cached regex, reused search cache) on other input.
    for _ in 0..3 {
        assert!(eval_bool("'2024-01-02'.matches('^\\\\d{4}-\\\\d{2}-\\\\d{2}$')"));
        assert!(!eval_bool("'2024-1-02'.matches('^\\\\d{4}-\\\\d{2}-\\\\d{2}$')"));
    }

    // replaceMatches() against regex::Regex::replace_all, the former implementation.
    let cases: &[(&str, &str, &str)] = &[
        ("abc", "b", "x"),
        ("abcabc", "(a)(b)", "$2$1"),
        ("abcabc", "(?<first>a)", "[${first}]"),
        ("abc", "b", "$$"),
        ("abc", "b", "$9"),
        ("abc", "(b)", "$1x"),
        ("abc", "(b)", "${1}x"),
        ("abc", "", "-"),
        ("äöü", "", "-"),
        ("ä😀b", "x*", "-"),
        ("aaa", "a*?", "<$0>"),
        ("line1\nline2", "^line", "L"),
        ("line1\nline2", "(?m)^line", "L"),
        ("a.b.c", "\\.", "/"),
        ("Hello World", "(\\w+) (\\w+)", "$2 $1"),
        ("no match here", "xyz", "!"),
        ("ñandú", "[^a-z]", "_"),
    ];
    for (s, p, r) in cases {
        let want = regex::Regex::new(p).unwrap().replace_all(s, *r).into_owned();
        let src = format!("{}.replaceMatches({}, {})", lit(s), lit(p), lit(r));
        let got = if p.is_empty() { s.to_string() } else { want.clone() };
        assert_eq!(eval_str(&src), got, "{src}");
        // And matches() as regex::Regex::is_match with `(?s)`.
        let want = regex::Regex::new(&format!("(?s){p}")).unwrap().is_match(s);
        let src = format!("{}.matches({})", lit(s), lit(p));
        if !p.is_empty() {
            assert_eq!(eval_bool(&src), want, "{src}");
        }
    }
}
