//! `tsunagu explain 'Observation?code=…&_sort=date'`: runs one search page as the server
//! would for an operator and prints how the store answered it: the plans taken (sort walk,
//! driven index, general SQL, the write-order walk past the ceiling), what came back, the
//! time, and each statement with its plan. On SQLite: `EXPLAIN QUERY PLAN`, the estimate
//! plans are chosen by, the steps and rows examined. On PostgreSQL: `EXPLAIN (ANALYZE,
//! BUFFERS)` of each statement run again, with estimated and actual rows.

use tsunagu_interaction::SearchParams;

pub fn run(cfg: &crate::config::Config, search: &str, no_ceiling: bool) -> Result<(), String> {
    let search = search.trim_start_matches('/');
    let (path, query) = search.split_once('?').unwrap_or((search, ""));
    let ty = match path.trim_matches('/') {
        "" => None,
        t if t.contains('/') || t.starts_with('$') => {
            return Err(format!("explain takes a type-level or system-level search (Type?params), not '{path}'"))
        }
        t => Some(t),
    };
    let fhir = crate::open(cfg, false)?;
    let params = SearchParams::parse(query);
    let mut q = fhir.search_query(ty, &params).map_err(|e| e.message(Default::default()))?;
    if no_ceiling {
        q.max_steps = None;
        q.max_ms = None;
    }
    if let Some(db) = &cfg.database {
        return postgres(cfg, db, &q, ty, query);
    }
    // A second handle on the same data directory: explaining is the SQLite store's own.
    let store = tsunagu_store::SqliteStore::open(&cfg.data, cfg.sync)
        .map_err(|e| format!("cannot open {}: {e}", cfg.data.display()))?;
    let x = store.explain(&q).map_err(|e| e.to_string())?;
    println!("search:    {}?{query}", ty.unwrap_or(""));
    for (i, p) in x.plans.iter().enumerate() {
        println!("{:<10} {p}", if i == 0 { "plan:" } else { "" });
    }
    match x.estimate {
        Some(n) if n >= 1_000_000 => {
            println!("estimate:  1,000,000 or more index rows for the most selective condition")
        }
        Some(n) => println!("estimate:  {n} index rows for the most selective condition"),
        None => println!("estimate:  none (no condition counted on its own index)"),
    }
    let ceiling = match q.max_steps {
        Some(m) => format!("ceiling max_search_steps = {m}"),
        None => "no ceiling".into(),
    };
    println!("steps:     {} SQLite VM steps ({ceiling})", x.steps);
    println!("examined:  {} rows by the store's own walks", x.examined);
    print_page(&x.page);
    println!("time:      {:.1} ms", x.elapsed.as_secs_f64() * 1000.0);
    for (i, s) in x.statements.iter().enumerate() {
        print_statement(i, &s.sql, &s.values);
        println!("  query plan:");
        for row in &s.query_plan {
            println!("    {row}");
        }
    }
    Ok(())
}

/// The same on PostgreSQL, through a second store on the configured database.
fn postgres(
    cfg: &crate::config::Config,
    db: &crate::config::Database,
    q: &tsunagu_store::SearchQuery,
    ty: Option<&str>,
    query: &str,
) -> Result<(), String> {
    let store = tsunagu_store_postgres::PostgresStore::open(&crate::postgres_config(cfg, db))
        .map_err(|e| format!("cannot open {}: {e}", crate::config::redacted(&db.url)))?;
    let x = store.explain(q).map_err(|e| e.to_string())?;
    println!("search:    {}?{query}", ty.unwrap_or(""));
    for (i, p) in x.plans.iter().enumerate() {
        println!("{:<10} {p}", if i == 0 { "plan:" } else { "" });
    }
    match q.max_ms {
        Some(m) => println!("ceiling:   max_search_ms = {m} per statement"),
        None => println!("ceiling:   none"),
    }
    print_page(&x.page);
    println!("time:      {:.1} ms", x.elapsed.as_secs_f64() * 1000.0);
    for (i, s) in x.statements.iter().enumerate() {
        print_statement(i, &s.sql, &s.values);
        if s.analyzed {
            println!("  EXPLAIN (ANALYZE, BUFFERS), run again (rows=: estimated; actual … rows=: found):");
        } else {
            println!("  EXPLAIN (run again, it went past the ceiling: estimates only):");
        }
        for row in &s.plan {
            println!("    {row}");
        }
    }
    Ok(())
}

fn print_page(page: &Result<tsunagu_store::SearchPage, tsunagu_store::StoreError>) {
    match page {
        Ok(p) => {
            let mut line = format!("returned:  {} resources", p.resources.len());
            if let Some(t) = p.total {
                line.push_str(&format!(", total {t}"));
            }
            if let Some(r) = p.resume_after {
                line.push_str(&format!(", stopped at the ceiling (next page after seq {r})"));
            } else if p.more {
                line.push_str(", more follow");
            }
            println!("{line}");
        }
        Err(e) => println!("returned:  nothing: {e}"),
    }
}

/// The `i`th statement a page ran, as sent, with its bound values.
fn print_statement(i: usize, sql: &str, values: &[String]) {
    println!("\nstatement {}:\n  {sql}", i + 1);
    if !values.is_empty() {
        println!("  values: {}", values.join(", "));
    }
}
