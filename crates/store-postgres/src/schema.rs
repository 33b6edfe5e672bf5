//! The schema and its migrations, applied when a store opens.
//!
//! Migrations run in one transaction holding `pg_advisory_xact_lock(MIGRATION_LOCK)`, so
//! nodes starting together apply each one once: the others wait, then find it recorded in
//! `schema_migration`.
//!
//! The layout is ready for Citus (distributed PostgreSQL): every resource row and index row
//! carries the distribution key `shard` (see the crate documentation for its rule), every
//! primary key and unique index includes it (the index tables have none: rows are
//! deduplicated before they are written), and there are no foreign keys and no sequences
//! (`seq` comes from the `counter` row). Distributing would be, after the migrations:
//!
//! ```sql
//! SELECT create_distributed_table('resource', 'shard');
//! SELECT create_distributed_table(t, 'shard', colocate_with => 'resource')
//!   FROM unnest(ARRAY['idx_token', 'idx_string', 'idx_date', 'idx_date_wide', 'idx_number',
//!     'idx_quantity', 'idx_reference', 'idx_uri', 'idx_composite', 'idx_fulltext']) AS t;
//! SELECT create_reference_table(t)
//!   FROM unnest(ARRAY['schema_migration', 'counter', 'setting', 'audit']) AS t;
//! ```
//!
//! (`resource`, `idx_*`: distributed by `shard`, co-located; the small global tables
//! `schema_migration`, `counter`, `setting` and the audit chain: reference tables.) The
//! searches themselves join on `seq` and are not yet written to keep to one shard; that
//! and a test on Citus are future work. Text columns use the "C" collation so that
//! comparisons and sorts are by bytes, as in the SQLite store.

use postgres::Client;

use crate::{Pg, StoreError};

/// The advisory lock key of migrations ("tsunagu" + 1).
pub(crate) const MIGRATION_LOCK: i64 = 0x7473_756e_6167_7501;

/// Migrations by version, in order. A released migration is never edited; a change is a
/// new one.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

const V1: &str = r#"
CREATE TABLE counter (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
INSERT INTO counter (name, value) VALUES ('seq', 0), ('clock', 0);
CREATE TABLE setting (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE resource (
    shard        text COLLATE "C" NOT NULL,
    seq          bigint  NOT NULL,
    type         text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    version      bigint  NOT NULL,
    last_updated bigint  NOT NULL,
    deleted      boolean NOT NULL,
    current      boolean NOT NULL,
    method       text    NOT NULL,
    body         bytea   NOT NULL,
    PRIMARY KEY (seq, shard)
);
CREATE UNIQUE INDEX resource_version ON resource (shard, type, id, version);
CREATE INDEX resource_type_id ON resource (type, id, version);
CREATE INDEX resource_live ON resource (type, seq) WHERE current AND NOT deleted;
CREATE INDEX resource_live_seq ON resource (seq) WHERE current AND NOT deleted;
CREATE INDEX resource_last_updated ON resource (last_updated);
-- Search indexes of the current version of each live resource, as in SQLite: rows of a
-- superseded or deleted version are removed when the new version is written. Absent
-- optional parts are ''. Each table has its lookup index led by (type, param, value…) and
-- one on (seq, param) for deletes and sort values.
CREATE TABLE idx_token (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, code text COLLATE "C" NOT NULL, system text COLLATE "C" NOT NULL,
    seq bigint NOT NULL, display text COLLATE "C");
CREATE INDEX idx_token_key ON idx_token (type, param, code, system, seq);
CREATE TABLE idx_string (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, norm text COLLATE "C" NOT NULL, exact text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    -- A B-tree entry holds at most about 2,700 bytes: the index has the first 200
    -- characters (at most 800 bytes), which prefix searches probe before testing `norm`.
    norm_key text COLLATE "C" GENERATED ALWAYS AS (left(norm, 200)) STORED);
CREATE INDEX idx_string_key ON idx_string (type, param, norm_key, seq);
CREATE INDEX idx_string_exact ON idx_string USING hash (exact);
CREATE TABLE idx_date (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_date_key ON idx_date (type, param, lo, hi, seq);
CREATE TABLE idx_date_wide (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_date_wide_key ON idx_date_wide (type, param, lo, hi, seq);
CREATE TABLE idx_number (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, value double precision NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_number_key ON idx_number (type, param, value, seq);
CREATE TABLE idx_quantity (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, code text COLLATE "C" NOT NULL, value double precision NOT NULL,
    system text COLLATE "C" NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_quantity_key ON idx_quantity (type, param, code, value, system, seq);
CREATE TABLE idx_reference (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, target_id text COLLATE "C" NOT NULL,
    target_type text COLLATE "C" NOT NULL, url text COLLATE "C" NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_reference_key ON idx_reference (type, param, target_id, target_type, seq);
CREATE INDEX idx_reference_target ON idx_reference (target_id, target_type);
CREATE TABLE idx_uri (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, value text COLLATE "C" NOT NULL, seq bigint NOT NULL);
CREATE INDEX idx_uri_key ON idx_uri (type, param, value, seq);
-- Composite parameters: the first component (c_code, c_system) and the second in the
-- columns its own kind's table uses; a URI second component in `uri` (SQLite shares
-- `value` between numbers and URIs).
CREATE TABLE idx_composite (shard text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
    param text COLLATE "C" NOT NULL, c_code text COLLATE "C" NOT NULL, c_system text COLLATE "C" NOT NULL,
    seq bigint NOT NULL, code text COLLATE "C", system text COLLATE "C", display text COLLATE "C",
    norm text COLLATE "C", exact text COLLATE "C", value double precision, uri text COLLATE "C",
    lo bigint, hi bigint, target_id text COLLATE "C", target_type text COLLATE "C", url text COLLATE "C");
CREATE INDEX idx_composite_key ON idx_composite (type, param, c_code, c_system, seq);
-- `narrative`/`content`: the token streams (tokens separated by one space) in which
-- phrases are checked exactly, as the vector cannot in long texts (fulltext.rs).
CREATE TABLE idx_fulltext (shard text COLLATE "C" NOT NULL, seq bigint NOT NULL, tsv tsvector NOT NULL,
    narrative text COLLATE "C", content text COLLATE "C", PRIMARY KEY (seq, shard));
CREATE INDEX idx_fulltext_tsv ON idx_fulltext USING gin (tsv);
CREATE TABLE audit (
    n        bigint PRIMARY KEY,
    id       text COLLATE "C" NOT NULL UNIQUE,
    recorded bigint NOT NULL,
    agent    text COLLATE "C" NOT NULL,
    patient  text COLLATE "C" NOT NULL,
    subtype  text COLLATE "C" NOT NULL,
    outcome  text COLLATE "C" NOT NULL,
    entities text COLLATE "C" NOT NULL,
    body     bytea NOT NULL,
    prev     bytea NOT NULL,
    hash     bytea NOT NULL
);
CREATE INDEX audit_agent ON audit (agent, n);
CREATE INDEX audit_patient ON audit (patient, n);
CREATE INDEX audit_recorded ON audit (recorded);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
"#;

/// Index tables with a (seq, param) index, created in a loop to keep V1 readable.
pub(crate) const INDEX_TABLES: [&str; 10] = [
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_date_wide",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
    "idx_fulltext",
];

fn v1_seq_indexes() -> String {
    INDEX_TABLES
        .iter()
        .filter(|t| **t != "idx_fulltext")
        .map(|t| format!("CREATE INDEX {t}_seq ON {t} (seq, param);\n"))
        .collect()
}

/// Applies the migrations this database has not had yet; returns how many it applied.
pub(crate) fn migrate(c: &mut Client) -> Result<usize, StoreError> {
    let mut tx = c.transaction().pg()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).pg()?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, \
         applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .pg()?;
    let done: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migration", &[]).pg()?.get(0);
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
        tx.batch_execute(sql).pg()?;
        if *version == 1 {
            tx.batch_execute(&v1_seq_indexes()).pg()?;
        }
        tx.execute("INSERT INTO schema_migration (version) VALUES ($1)", &[version]).pg()?;
        applied += 1;
    }
    tx.commit().pg()?;
    Ok(applied)
}
