//! What only PostgreSQL has: migrations and writers across several nodes, read replicas,
//! failed commits, and use from blocking threads of an async runtime.

use std::sync::{Arc, Barrier};

use tsunagu_store::{
    Clause, Condition, IndexEntry, IndexValue, Method, NewVersion, SearchQuery, Store, SystemMatch, Test,
};
use tsunagu_store_postgres::throwaway::{self, Cluster};
use tsunagu_store_postgres::{PostgresConfig, PostgresStore};

fn identifier(value: &str) -> IndexEntry {
    IndexEntry {
        param: "identifier".into(),
        value: IndexValue::Token { system: Some("urn:x".into()), code: value.into(), display: None },
    }
}

fn by_identifier(value: &str) -> SearchQuery {
    SearchQuery {
        resource_type: Some("Patient".into()),
        clauses: vec![Clause {
            any: vec![Condition::Index {
                param: "identifier".into(),
                test: Test::Token { system: SystemMatch::Is("urn:x".into()), code: Some(value.into()) },
                negate: false,
            }],
        }],
        count: 10,
        ..Default::default()
    }
}

fn put(store: &dyn Store, id: &str, version: u64) -> Result<(), tsunagu_store::StoreError> {
    let body = format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
    let index = [identifier(id)];
    store.write(&mut |txn| {
        txn.put(&NewVersion {
            resource_type: "Patient",
            id,
            version,
            last_updated_ms: 1,
            method: Method::Put,
            body: Some(body.as_bytes()),
            index: &index,
        })
    })
}

#[test]
fn nodes_starting_together_apply_the_schema_once() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (config, barrier) = (config.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&config).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let mut c = postgres::Client::connect(&config.url, postgres::NoTls).unwrap();
    let rows: Vec<i32> = c
        .query("SELECT version FROM schema_migration ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(PostgresStore::migrate(&config.url).unwrap(), 0);
}

/// Large bodies are compressed with LZ4 where the server has it (schema V5), and read
/// back whole; without LZ4 the migration leaves `pglz` and still applies.
#[test]
fn large_bodies_are_compressed_with_lz4_and_read_back() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let store = PostgresStore::open(&config).unwrap();
    let text = (0..2000).map(|i| format!("word{} ", i % 37)).collect::<String>();
    let body = format!(r#"{{"resourceType":"Patient","id":"big","text":{{"div":"{text}"}}}}"#);
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: "Patient",
                id: "big",
                version: 1,
                last_updated_ms: 1,
                method: Method::Put,
                body: Some(body.as_bytes()),
                index: &[],
            })
        })
        .unwrap();
    let read = store.read("Patient", "big").unwrap().unwrap();
    assert_eq!(read.body, body.as_bytes());
    let mut c = postgres::Client::connect(&config.url, postgres::NoTls).unwrap();
    let has_lz4 = c.batch_execute("CREATE TEMP TABLE lz4_probe (x text COMPRESSION lz4)").is_ok();
    let method: Option<String> =
        c.query_one("SELECT pg_column_compression(body) FROM resource WHERE id = 'big'", &[]).unwrap().get(0);
    assert_eq!(method.as_deref(), Some(if has_lz4 { "lz4" } else { "pglz" }));
}

/// 32 writers on two nodes each search for an identifier and create the resource when
/// none has it: the advisory lock makes exactly one of them create it.
#[test]
fn conditional_creates_on_two_nodes_create_once() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let nodes = [Arc::new(PostgresStore::open(&config).unwrap()), Arc::new(PostgresStore::open(&config).unwrap())];
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let (store, barrier) = (nodes[i % 2].clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let id = format!("t{i}");
                let body = format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
                let index = [identifier("X")];
                store
                    .write(&mut |txn| {
                        if !txn.search_ids(&by_identifier("X"))?.is_empty() {
                            return Ok(());
                        }
                        txn.put(&NewVersion {
                            resource_type: "Patient",
                            id: &id,
                            version: 1,
                            last_updated_ms: store.next_timestamp_ms(),
                            method: Method::Post,
                            body: Some(body.as_bytes()),
                            index: &index,
                        })
                    })
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for node in &nodes {
        let page = node.search(&SearchQuery { total: true, ..by_identifier("X") }).unwrap();
        assert_eq!(page.total, Some(1));
    }
}

/// Timestamps from two nodes on one database never repeat and each node's grow, whether
/// taken one by one or in batches (`next_timestamps_ms`, every third step here).
#[test]
fn timestamps_are_unique_across_nodes() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let a = Arc::new(PostgresStore::open(&config).unwrap());
    let b = Arc::new(PostgresStore::open(&config).unwrap());
    let run = |s: Arc<PostgresStore>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            for i in 0..200 {
                if i % 3 == 0 {
                    let first = s.next_timestamps_ms(5);
                    out.extend(first..first + 5);
                } else {
                    out.push(s.next_timestamp_ms());
                }
            }
            out
        })
    };
    let (ta, tb) = (run(a), run(b));
    let (ta, tb) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(ta.windows(2).all(|w| w[0] < w[1]) && tb.windows(2).all(|w| w[0] < w[1]));
    let n = ta.len() + tb.len();
    let mut all: Vec<i64> = ta.into_iter().chain(tb).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);
}

#[test]
fn a_write_is_read_back_at_once_through_a_store_with_a_replica() {
    let Some(cluster) = Cluster::start(true) else { return };
    let config = cluster.fresh_config();
    assert_eq!(config.replicas.len(), 1);
    let store = PostgresStore::open(&config).unwrap();
    for i in 0..30 {
        let id = format!("p{i}");
        put(&store, &id, 1).unwrap();
        assert_eq!(store.read("Patient", &id).unwrap().unwrap().id, id);
        let page = store.search(&by_identifier(&id)).unwrap();
        assert_eq!(page.resources.len(), 1, "search after write {i}");
        let view = store.pinned().unwrap();
        assert!(view.read("Patient", &id).unwrap().is_some());
    }
    // The replica catches up and then serves reads.
    let start = std::time::Instant::now();
    while !store.replica_caught_up() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the replica never caught up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut replica = postgres::Client::connect(&config.replicas[0], postgres::NoTls).unwrap();
    let n: i64 = replica.query_one("SELECT COUNT(*) FROM resource", &[]).unwrap().get(0);
    assert_eq!(n, 30);
    let standby: bool = replica.query_one("SELECT pg_is_in_recovery()", &[]).unwrap().get(0);
    assert!(standby);
    let (served, fell_back) = store.replica_reads();
    eprintln!("replica reads: {served} served by the replica, {fell_back} by the primary");
    assert!(served > 0);
    assert!(store.read("Patient", "p0").unwrap().is_some());
    assert_eq!(store.replica_reads().0, served + 1);
}

/// A node that has just migrated a fresh database reads from the primary until the replica
/// has replayed the schema too (before, a replica without the tables answered its reads
/// with an error).
#[test]
fn a_replica_that_has_not_replayed_the_schema_is_not_read() {
    let Some(cluster) = Cluster::start(true) else { return };
    let config = cluster.fresh_config();
    // The empty database reaches the replica; then the replica stops replaying.
    let start = std::time::Instant::now();
    let mut replica = loop {
        match postgres::Client::connect(&config.replicas[0], postgres::NoTls) {
            Ok(c) => break c,
            Err(e) => assert!(start.elapsed() < std::time::Duration::from_secs(10), "{e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    replica.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    let store = PostgresStore::open(&config).unwrap();
    let tables: i64 =
        replica.query_one("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'resource'", &[]).unwrap().get(0);
    assert_eq!(tables, 0, "the replica has not replayed the migrations");
    assert!(store.read("Patient", "p").unwrap().is_none());
    assert!(store.search(&by_identifier("p")).unwrap().resources.is_empty());
    assert_eq!(store.pinned().unwrap().high_seq(), 0);
    assert_eq!(store.replica_reads().0, 0, "nothing was read from the replica");
    // A replica that did not catch up rests: not every read waits for it.
    for _ in 0..5 {
        assert!(store.read("Patient", "p").unwrap().is_none());
    }
    let (served, fell_back) = store.replica_reads();
    assert_eq!((served, fell_back), (0, 8));
    assert!(store.replica_waits() < 8, "{} of 8 reads waited for the replica", store.replica_waits());
    replica.batch_execute("SELECT pg_wal_replay_resume()").unwrap();
}

/// A replica that is not there: reads fall back to the primary.
#[test]
fn reads_fall_back_to_the_primary_without_a_replica() {
    let Some(cluster) = throwaway::shared() else { return };
    let mut config = cluster.fresh_config();
    config.replicas = vec!["host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=1".into()];
    let store = PostgresStore::open(&config).unwrap();
    put(&store, "a", 1).unwrap();
    assert!(store.read("Patient", "a").unwrap().is_some());
}

/// The backend of a write is terminated before its commit: the write is an error, and
/// nothing of it is stored.
#[test]
fn a_commit_that_fails_is_an_error() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let store = PostgresStore::open(&config).unwrap();
    let mut other = postgres::Client::connect(&config.url, postgres::NoTls).unwrap();
    let body = br#"{"resourceType":"Patient","id":"lost"}"#;
    let result = store.write(&mut |txn| {
        txn.put(&NewVersion {
            resource_type: "Patient",
            id: "lost",
            version: 1,
            last_updated_ms: 1,
            method: Method::Post,
            body: Some(body),
            index: &[],
        })?;
        // The writer is whoever holds the write lock.
        let killed = other
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap();
        assert_eq!(killed.len(), 1);
        Ok(())
    });
    assert!(result.is_err(), "{result:?}");
    // The store goes on with a new connection, and the lost write is not there.
    assert!(store.read("Patient", "lost").unwrap().is_none());
    put(&store, "kept", 1).unwrap();
    assert!(store.read("Patient", "kept").unwrap().is_some());
}

/// The primary stops: writes and reads are errors, never successes or panics.
#[test]
fn a_stopped_server_gives_errors() {
    let Some(cluster) = Cluster::start(false) else { return };
    let config = cluster.fresh_config();
    let store = PostgresStore::open(&config).unwrap();
    put(&store, "a", 1).unwrap();
    cluster.stop_primary();
    assert!(put(&store, "b", 1).is_err());
    assert!(store.read("Patient", "a").is_err());
    // Without the database the clock still moves forward.
    let t = store.next_timestamp_ms();
    assert!(store.next_timestamp_ms() > t);
    let bad = PostgresConfig { replicas: vec![], pool_size: 1, ..PostgresConfig::new(&config.url) };
    assert!(PostgresStore::open(&bad).is_err());
}

/// The server restarts: connections idle in the pool are broken, and the next reads and
/// writes go on with new ones.
#[test]
fn a_restarted_server_is_used_again() {
    let Some(cluster) = Cluster::start(false) else { return };
    let store = PostgresStore::open(&cluster.fresh_config()).unwrap();
    put(&store, "a", 1).unwrap();
    // Several idle connections in the pool.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert!(store.read("Patient", "a").unwrap().is_some()));
        }
    });
    cluster.restart_primary();
    assert!(store.read("Patient", "a").unwrap().is_some());
    cluster.restart_primary();
    put(&store, "b", 1).unwrap();
    assert!(store.read("Patient", "b").unwrap().is_some());
}

/// The server calls the store from `spawn_blocking`; tools call it from plain threads.
#[test]
fn works_from_spawn_blocking_and_plain_threads() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = rt
        .block_on(async {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let store = Arc::new(PostgresStore::open(&config).unwrap());
                put(&*store, "a", 1).unwrap();
                store
            })
            .await
        })
        .unwrap();
    let s = store.clone();
    let found =
        rt.block_on(async move { tokio::task::spawn_blocking(move || s.read("Patient", "a").unwrap()).await }).unwrap();
    assert!(found.is_some());
    let s = store.clone();
    std::thread::spawn(move || put(&*s, "b", 1).unwrap()).join().unwrap();
    // Dropped on a blocking thread too (its connections' runtimes with it).
    rt.block_on(async move { tokio::task::spawn_blocking(move || drop(store)).await }).unwrap();
}

/// Called on an async task itself (a mistake the server avoids): on a multi-threaded
/// runtime it works (in `block_in_place`), on a single-threaded one it is an error; never
/// a panic, dropping included.
#[test]
fn calls_from_async_tasks_do_not_panic() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = cluster.fresh_config();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    multi.block_on(async {
        let store = PostgresStore::open(&config).unwrap();
        put(&store, "a", 1).unwrap();
        assert!(store.read("Patient", "a").unwrap().is_some());
        let view = store.pinned().unwrap();
        assert!(view.read("Patient", "a").unwrap().is_some());
        assert!(store.next_timestamp_ms() > 0);
        drop(view);
        drop(store);
    });
    let store = PostgresStore::open(&config).unwrap();
    let view = store.pinned().unwrap();
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    single.block_on(async {
        assert!(matches!(store.read("Patient", "a"), Err(tsunagu_store::StoreError::Backend(_))));
        assert!(put(&store, "b", 1).is_err());
        assert!(view.read("Patient", "a").is_err());
        assert!(store.next_timestamp_ms() > 0);
        drop(view);
    });
    // A blocking task of the same runtime may use it (the server's requests run so).
    let store = std::sync::Arc::new(store);
    let s = store.clone();
    single.block_on(async move {
        tokio::task::spawn_blocking(move || {
            put(s.as_ref(), "c", 1).unwrap();
            assert!(s.read("Patient", "c").unwrap().is_some());
        })
        .await
        .unwrap()
    });
    drop(store);
}

/// Run by `missing_binaries_skip_or_fail` in a child process whose PATH has no PostgreSQL.
#[test]
fn probe_without_binaries() {
    if std::env::var("TSUNAGU_PG_PROBE").is_err() {
        return;
    }
    assert!(throwaway::test_store().is_none());
}

/// Without the binaries a test skips loudly, and under `CI=true` fails.
#[test]
fn missing_binaries_skip_or_fail() {
    let run = |ci: Option<&str>| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args(["--exact", "postgres::probe_without_binaries", "--nocapture", "--test-threads", "1"]);
        c.env("TSUNAGU_PG_BIN", "/nonexistent").env("TSUNAGU_PG_PROBE", "1").env_remove("CI");
        if let Some(ci) = ci {
            c.env("CI", ci);
        }
        c.output().unwrap()
    };
    let skipped = run(None);
    assert!(skipped.status.success());
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("SKIPPED: PostgreSQL not installed"));
    let failed = run(Some("true"));
    assert!(!failed.status.success());
}

/// With one connection allowed, a pinned view holding it makes a read wait and then fail as
/// unavailable (503 to a client); writes still get timestamps (the shared clock has a
/// connection of its own, which a writer needs while holding the pool's).
#[test]
fn connections_are_bounded_per_store() {
    let Some(cluster) = throwaway::shared() else { return };
    let config = PostgresConfig { max_connections: 1, wait_ms: 1000, ..cluster.fresh_config() };
    let store = PostgresStore::open(&config).unwrap();
    let started = std::time::Instant::now();
    put(&store, "a", 1).unwrap();
    let t = store.next_timestamp_ms();
    store
        .write(&mut |txn| {
            let index = [identifier("b")];
            txn.put(&NewVersion {
                resource_type: "Patient",
                id: "b",
                version: 1,
                last_updated_ms: store.next_timestamp_ms(),
                method: Method::Post,
                body: Some(b"{}"),
                index: &index,
            })
        })
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(1000), "no write waited for a connection");
    assert!(store.read("Patient", "b").unwrap().unwrap().last_updated_ms > t);
    let view = store.pinned().unwrap();
    let Err(tsunagu_store::StoreError::Unavailable(m)) = store.search(&by_identifier("a")) else {
        panic!("the only connection is the view's")
    };
    assert!(m.contains("max_database_connections"), "{m}");
    assert!(view.read("Patient", "a").unwrap().is_some());
    drop(view);
    assert_eq!(store.search(&by_identifier("a")).unwrap().resources.len(), 1);
}

/// `tsunagu explain` on PostgreSQL: each statement of the page with its plan from
/// `EXPLAIN (ANALYZE, BUFFERS)`, estimated and actual rows.
#[test]
fn explain_gives_estimated_and_actual_rows() {
    let Some(store) = throwaway::test_store() else { return };
    for id in ["a", "b", "c"] {
        put(&*store, id, 1).unwrap();
    }
    let q = SearchQuery { total: true, max_ms: Some(60_000), ..by_identifier("b") };
    let x = store.explain(&q).unwrap();
    let page = x.page.unwrap();
    assert_eq!((page.total, page.resources.len()), (Some(1), 1));
    assert!(x.plans.iter().any(|p| p.contains("_total")), "{:?}", x.plans);
    assert_eq!(x.statements.len(), 2, "the count and the page");
    for s in &x.statements {
        assert!(s.analyzed && s.values.contains(&"'b'".to_string()), "{s:?}");
        let plan = s.plan.join("\n");
        assert!(plan.contains("rows=") && plan.contains("actual time=") && plan.contains("Buffers"), "{plan}");
        assert!(plan.contains("Execution Time"), "{plan}");
    }
}

/// A page whose one condition is an equality on an index's whole key walks that index in
/// write order (`drive.rs`): resources listing the value twice come once, superseded and
/// deleted versions not at all, and pages followed by their cursor give every match once.
#[test]
fn equality_pages_walk_the_index_in_write_order() {
    let Some(store) = throwaway::test_store() else { return };
    let write = |id: &str, version: u64, delete: bool| {
        let index = if delete { vec![] } else { vec![identifier("same"), identifier("same"), identifier(id)] };
        let body = format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
        store
            .write(&mut |txn| {
                txn.put(&NewVersion {
                    resource_type: "Patient",
                    id,
                    version,
                    last_updated_ms: 1,
                    method: if delete { Method::Delete } else { Method::Put },
                    body: (!delete).then_some(body.as_bytes()),
                    index: &index,
                })
            })
            .unwrap();
    };
    for i in 0..10 {
        write(&format!("p{i}"), 1, false);
    }
    write("p3", 2, false);
    write("p5", 2, true);
    let expected = ["p0", "p1", "p2", "p4", "p6", "p7", "p8", "p9", "p3"];
    let mut got = Vec::new();
    let mut q = SearchQuery { count: 2, ..by_identifier("same") };
    loop {
        let x = store.explain(&q).unwrap();
        assert!(x.plans.iter().any(|p| p.contains("driven walk")), "{:?}", x.plans);
        let page = x.page.unwrap();
        got.extend(page.resources.iter().map(|v| v.id.clone()));
        if !page.more {
            break;
        }
        q.after_seq = page.resources.last().map(|v| v.seq);
    }
    assert_eq!(got, expected);
    assert_eq!(store.search(&by_identifier("p5")).unwrap().resources.len(), 0);
}
