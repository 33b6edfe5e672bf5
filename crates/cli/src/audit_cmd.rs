//! `tsunagu audit verify`: walks the audit chain and reports the first record that was
//! edited, deleted, inserted or reordered (exit 1), and the head hash to keep elsewhere
//! (compared with `--expect-head`, it also shows records cut from the end).

use tsunagu_store::{hex, ChainBreak};

use crate::config::Config;

pub fn verify(cfg: &Config, expect_head: Option<&str>) -> Result<bool, String> {
    let store = crate::open_store(cfg)?;
    let report = store.audit_verify().map_err(|e| e.to_string())?;
    let head = hex(&report.head);
    println!("records: {}", report.records);
    println!("head: {head}");
    let mut ok = true;
    if let Some(b) = &report.first_break {
        ok = false;
        match b {
            ChainBreak::Edited { n } => println!("BROKEN at record {n}: its content was changed after it was written"),
            ChainBreak::Missing { after, n } => {
                println!("BROKEN after record {after}: records up to {n} are missing (deleted)")
            }
            ChainBreak::Unlinked { n } => {
                println!("BROKEN at record {n}: it does not follow the record before it (inserted or reordered)")
            }
        }
    }
    if let Some(expected) = expect_head {
        if !expected.eq_ignore_ascii_case(&head) {
            ok = false;
            println!("BROKEN: the head is not the expected {expected} (records cut from the end, or replaced)");
        }
    }
    if ok {
        println!("the audit chain is intact");
    }
    Ok(ok)
}
