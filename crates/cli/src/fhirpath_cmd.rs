//! `tsunagu fhirpath [--strict] 'EXPR' [FILE|-]`: evaluates a FHIRPath expression on a
//! resource (JSON or XML; JSON that is not a FHIR resource is navigated untyped) and prints
//! the result collection as JSON, `[{"type": …, "value": …}, …]`.

use std::io::Read;
use tsunagu_fhirpath::{CompileOptions, EvalContext, Item};

pub fn run(expression: &str, file: Option<&str>, vars: &[String], strict: bool) -> Result<(), String> {
    let text = match file {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| format!("stdin: {e}"))?;
            s
        }
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
    };
    let resource: serde_json::Value = if text.trim_start().starts_with('<') {
        tsunagu_format::xml_to_json(&text).map_err(|e| format!("cannot read the XML: {e}"))?
    } else {
        serde_json::from_str(&text).map_err(|e| format!("cannot read the JSON: {e}"))?
    };
    let opts = CompileOptions { strict, ..Default::default() };
    let expr = tsunagu_fhirpath::compile_with(expression, &opts).map_err(|e| e.to_string())?;
    let mut ctx = EvalContext::new();
    for v in vars {
        let (name, value) = v.split_once('=').ok_or_else(|| format!("--var takes NAME=VALUE, not '{v}'"))?;
        ctx.set_var(name.trim_start_matches('%'), vec![Item::string(value)]);
    }
    let items = expr.evaluate_with(&resource, &ctx).map_err(|e| e.to_string())?;
    let out = tsunagu_fhirpath::to_json_output(&items);
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON serialises"));
    Ok(())
}
