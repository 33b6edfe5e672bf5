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
//!   FROM unnest(ARRAY['schema_migration', 'counter', 'live_count', 'setting', 'audit', 'idx_token_text']) AS t;
//! ```
//!
//! (`resource`, `idx_*`: distributed by `shard`, co-located; the small global tables
//! `schema_migration`, `counter`, `live_count`, `setting` and the audit chain: reference
//! tables.) The
//! searches themselves join on `seq` and are not yet written to keep to one shard; that
//! and a test on Citus are future work. Text columns use the "C" collation so that
//! comparisons and sorts are by bytes, as in the SQLite store.

use postgres::Client;

use crate::{Pg, StoreError};

/// The advisory lock key of migrations ("tsunagu" + 1).
pub(crate) const MIGRATION_LOCK: i64 = 0x7473_756e_6167_7501;

/// Migrations by version, in order. A released migration is never edited; a change is a
/// new one.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6), (7, V7), (8, V8), (9, V9)];

/// The version the migrations bring a database to.
pub(crate) const LATEST: i32 = 9;

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
-- `overflow`: the vector had to leave tokens out (PostgreSQL's 1 MB limit); such rows are
-- always candidates and decided by the token text.
CREATE TABLE idx_fulltext (shard text COLLATE "C" NOT NULL, seq bigint NOT NULL, tsv tsvector NOT NULL,
    narrative text COLLATE "C", content text COLLATE "C", overflow boolean NOT NULL DEFAULT false,
    PRIMARY KEY (seq, shard));
CREATE INDEX idx_fulltext_tsv ON idx_fulltext USING gin (tsv);
CREATE INDEX idx_fulltext_overflow ON idx_fulltext (seq) WHERE overflow;
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

/// Version 2: values of any length. A B-tree entry holds at most about 2,700 bytes, so a
/// token code or system, a URI, a reference's target id or type, or a composite's first
/// component longer than that made the write fail. Each such column gets a key column
/// `<col>_key`, its first `KEY_CHARS` (128) characters (at most 512 bytes, so an index
/// entry stays under 1,100 bytes plus `type` and `param` even when every column is long),
/// which the lookup indexes hold instead. A search for a value shorter than a key tests
/// the key alone (an index-only scan, as before); a longer one tests the key (the index)
/// and the whole value (see `query.rs`). Sort walks order by the key and then the whole
/// value, which is the order of the whole value. Stored columns rather than indexes on
/// `left(…)`, because PostgreSQL makes no index-only scans of expression indexes.
/// `idx_string` already had its bounded `norm_key` and a hash index on `exact`.
const V2: &str = r#"
ALTER TABLE idx_token
    ADD COLUMN code_key text COLLATE "C" GENERATED ALWAYS AS (left(code, 128)) STORED,
    ADD COLUMN system_key text COLLATE "C" GENERATED ALWAYS AS (left(system, 128)) STORED;
DROP INDEX idx_token_key;
CREATE INDEX idx_token_key ON idx_token (type, param, code_key, system_key, seq);
ALTER TABLE idx_quantity
    ADD COLUMN code_key text COLLATE "C" GENERATED ALWAYS AS (left(code, 128)) STORED,
    ADD COLUMN system_key text COLLATE "C" GENERATED ALWAYS AS (left(system, 128)) STORED;
DROP INDEX idx_quantity_key;
CREATE INDEX idx_quantity_key ON idx_quantity (type, param, code_key, value, system_key, seq);
ALTER TABLE idx_reference
    ADD COLUMN target_id_key text COLLATE "C" GENERATED ALWAYS AS (left(target_id, 128)) STORED,
    ADD COLUMN target_type_key text COLLATE "C" GENERATED ALWAYS AS (left(target_type, 128)) STORED;
DROP INDEX idx_reference_key;
CREATE INDEX idx_reference_key ON idx_reference (type, param, target_id_key, target_type_key, seq);
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (target_id_key, target_type_key);
ALTER TABLE idx_uri ADD COLUMN value_key text COLLATE "C" GENERATED ALWAYS AS (left(value, 128)) STORED;
DROP INDEX idx_uri_key;
CREATE INDEX idx_uri_key ON idx_uri (type, param, value_key, seq);
ALTER TABLE idx_composite
    ADD COLUMN c_code_key text COLLATE "C" GENERATED ALWAYS AS (left(c_code, 128)) STORED,
    ADD COLUMN c_system_key text COLLATE "C" GENERATED ALWAYS AS (left(c_system, 128)) STORED;
DROP INDEX idx_composite_key;
CREATE INDEX idx_composite_key ON idx_composite (type, param, c_code_key, c_system_key, seq);
"#;

/// Statistics on how the key columns of each index table go together. PostgreSQL
/// otherwise multiplies the selectivities of `type`, `param` and the value as if they were
/// independent, estimates a common code at a few dozen rows instead of thousands, and picks
/// a plan that fetches every match to sort it (40 ms) rather than merging the index in
/// `seq` order with the resources and stopping at the page (1 ms), as measured on the
/// Synthea sample. Taken by ANALYZE (autovacuum, or `PostgresStore::analyze` after an
/// import).
const V3: &str = r#"
CREATE STATISTICS idx_token_stats (dependencies, mcv) ON type, param, code_key, system_key FROM idx_token;
CREATE STATISTICS idx_string_stats (dependencies, mcv) ON type, param, norm_key FROM idx_string;
CREATE STATISTICS idx_date_stats (dependencies, mcv) ON type, param, lo FROM idx_date;
CREATE STATISTICS idx_number_stats (dependencies, mcv) ON type, param, value FROM idx_number;
CREATE STATISTICS idx_quantity_stats (dependencies, mcv) ON type, param, code_key, system_key FROM idx_quantity;
CREATE STATISTICS idx_reference_stats (dependencies, mcv) ON type, param, target_type_key, target_id_key
    FROM idx_reference;
CREATE STATISTICS idx_uri_stats (dependencies, mcv) ON type, param, value_key FROM idx_uri;
CREATE STATISTICS idx_composite_stats (dependencies, mcv) ON type, param, c_code_key, c_system_key FROM idx_composite;
"#;

/// V3's statistics keep only their most-common-value lists: PostgreSQL estimates a clause
/// list from the MCV list of the object that covers it and would use `dependencies` only
/// for clauses that list left out, which the store's searches do not write; computing
/// them (every subset of the columns, each sorted) was 60% of an ANALYZE. On a Synthea
/// import, ANALYZE of the whole database took 3.7 s with both kinds and 1.4 s with MCV
/// lists alone, and `bench search --shapes` chose the same plans within noise. The
/// resource body gets no column statistics: no search compares it, and ANALYZE sorted
/// the sampled bodies. The new objects are empty until the ANALYZE at the end of this
/// migration (a sample: seconds, however large the tables).
///
/// `resource_live_updated`: a type's current resources in `_lastUpdated` order, so that a
/// `_sort=-_lastUpdated` page reads its rows from one end (as SQLite's
/// `resource_type_updated`) instead of sorting every resource of the type (81 ms for
/// 43,000 Observations).
const V4: &str = r#"
CREATE INDEX resource_live_updated ON resource (type, last_updated, seq) WHERE current AND NOT deleted;
DROP STATISTICS idx_token_stats, idx_string_stats, idx_date_stats, idx_number_stats, idx_quantity_stats,
    idx_reference_stats, idx_uri_stats, idx_composite_stats;
CREATE STATISTICS idx_token_stats (mcv) ON type, param, code_key, system_key FROM idx_token;
CREATE STATISTICS idx_string_stats (mcv) ON type, param, norm_key FROM idx_string;
CREATE STATISTICS idx_date_stats (mcv) ON type, param, lo FROM idx_date;
CREATE STATISTICS idx_number_stats (mcv) ON type, param, value FROM idx_number;
CREATE STATISTICS idx_quantity_stats (mcv) ON type, param, code_key, system_key FROM idx_quantity;
CREATE STATISTICS idx_reference_stats (mcv) ON type, param, target_type_key, target_id_key FROM idx_reference;
CREATE STATISTICS idx_uri_stats (mcv) ON type, param, value_key FROM idx_uri;
CREATE STATISTICS idx_composite_stats (mcv) ON type, param, c_code_key, c_system_key FROM idx_composite;
ALTER TABLE resource ALTER COLUMN body SET STATISTICS 0;
ANALYZE idx_token, idx_string, idx_date, idx_number, idx_quantity, idx_reference, idx_uri, idx_composite;
"#;

/// V5: large values compressed with LZ4 rather than PostgreSQL's own `pglz`, which
/// compresses several times slower and decompresses slower too: resource bodies over
/// about 2 KB (ExplanationOfBenefit, Claim, Patient, DiagnosticReport in Synthea) and the
/// text search columns. The setting applies to values written from now on; older ones
/// keep `pglz` and stay readable. A server built without LZ4 refuses the method
/// (`feature_not_supported`): the columns then keep `pglz`, and the migration still
/// counts as applied, so a build without LZ4 behaves exactly as V4 did.
const V5: &str = r#"
DO $$
BEGIN
    ALTER TABLE resource ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE idx_fulltext ALTER COLUMN tsv SET COMPRESSION lz4,
        ALTER COLUMN narrative SET COMPRESSION lz4, ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no LZ4: large values stay compressed with pglz';
END $$;
"#;

/// V6: the live resources of each type, kept (`live_count`, see `counts.rs`): a total
/// without conditions (`Observation?_summary=count`) counted every current row of the type,
/// 3 ms on the Synthea sample and growing with the data. Counted here from the data under
/// the write lock, so no write of a node already running lands between the count and the
/// commit.
const V6: &str = r#"
SELECT pg_advisory_xact_lock(8391179647662388482); -- crate::WRITE_LOCK
CREATE TABLE live_count (type text COLLATE "C" PRIMARY KEY, n bigint NOT NULL);
INSERT INTO live_count (type, n)
    SELECT type, COUNT(*) FROM resource WHERE current AND NOT deleted GROUP BY type;
"#;

/// V7: the distinct displays `idx_token` has held, with their code and system, so that
/// `:text` finds the codes whose display matches in this small table and reads only their
/// rows through `idx_token_key`, instead of testing the display of every row of the
/// parameter (`query::index_row`). Rows are never removed: a display no row has any longer
/// costs one lookup that finds nothing. Unique by a digest of the row (a display may be
/// too long for a b-tree key), lengths first so that no two rows share one text; written
/// `ON CONFLICT DO NOTHING` in key order (`index::Rows::write`). No `shard`: a reference
/// table under Citus.
const V7: &str = r#"
CREATE TABLE idx_token_text (type text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL,
    display text COLLATE "C" NOT NULL, code text COLLATE "C" NOT NULL, system text COLLATE "C" NOT NULL,
    digest bytea NOT NULL);
CREATE UNIQUE INDEX idx_token_text_key ON idx_token_text (type, param, digest);
INSERT INTO idx_token_text (type, param, display, code, system, digest)
    SELECT type, param, display, code, system,
        sha256(convert_to(length(display) || ':' || display || length(code) || ':' || code || system, 'UTF8'))
    FROM (SELECT DISTINCT type, param, display, code, system FROM idx_token WHERE display IS NOT NULL) d
    ON CONFLICT DO NOTHING;
"#;

/// V8: `idx_composite` indexed by first component, then the second's number or quantity
/// value, as SQLite's `idx_composite_value`: a test of both (`code=X&value-quantity=gt180`,
/// which the search crate pairs) is one range, and a quantity sort beside a required code
/// walks that code's values in order (`SearchQuery::sort_within`, `sortwalk.rs`). It
/// replaces `idx_composite_key`, which ended at the system.
const V8: &str = r#"
DROP INDEX IF EXISTS idx_composite_key;
CREATE INDEX IF NOT EXISTS idx_composite_value ON idx_composite (type, param, c_code_key, c_system_key, value, seq);
"#;

/// V9: the `(seq, param)` indexes of the tables whose conditions walks and probes test by
/// `seq` hold the columns those tests read, so that a probe is an index-only scan led by
/// `seq` (`query::row_type`): 1.1 µs a row, where one through the lookup index (type,
/// parameter, value, then `seq`) took 3.4 µs, and one through `(seq, param)` alone read
/// the table row too (57 ms for a cold sort walk's 1,096 rows, 937k resources).
const V9: &str = r#"
DROP INDEX idx_token_seq;
CREATE INDEX idx_token_seq ON idx_token (seq, param) INCLUDE (code_key, system_key);
DROP INDEX idx_date_seq;
CREATE INDEX idx_date_seq ON idx_date (seq, param) INCLUDE (lo, hi);
DROP INDEX idx_date_wide_seq;
CREATE INDEX idx_date_wide_seq ON idx_date_wide (seq, param) INCLUDE (lo, hi);
DROP INDEX idx_number_seq;
CREATE INDEX idx_number_seq ON idx_number (seq, param) INCLUDE (value);
DROP INDEX idx_quantity_seq;
CREATE INDEX idx_quantity_seq ON idx_quantity (seq, param) INCLUDE (code_key, value, system_key);
"#;

/// The secondary indexes an import into an empty database builds once the rows are in,
/// rather than maintaining them row by row (see `deferred.rs`): name and `ON …` clause,
/// exactly as the migrations leave them (a test compares the two through `pg_indexes`).
/// These are the lookup indexes whose entries land at random places (each insert reads
/// and dirties a leaf page of its own, and the pages end half full), and the GIN index.
/// Not here, so maintained throughout: the primary keys and `resource_version` (they
/// enforce uniqueness), `resource_type_id` (the import's own conflict check, and reads by
/// id), the `idx_*_seq` indexes (an update in the import deletes the old version's rows by
/// `seq`) and the indexes on `resource` ordered by `seq` or time, which grow at one end and
/// cost little. A migration that drops one of these must say `DROP INDEX IF EXISTS`: an
/// import that died may have left it out (the next open builds it again).
pub(crate) const DEFERRABLE_INDEXES: &[(&str, &str)] = &[
    ("idx_token_key", "ON idx_token USING btree (type, param, code_key, system_key, seq)"),
    ("idx_string_key", "ON idx_string USING btree (type, param, norm_key, seq)"),
    ("idx_string_exact", "ON idx_string USING hash (exact)"),
    ("idx_date_key", "ON idx_date USING btree (type, param, lo, hi, seq)"),
    ("idx_date_wide_key", "ON idx_date_wide USING btree (type, param, lo, hi, seq)"),
    ("idx_number_key", "ON idx_number USING btree (type, param, value, seq)"),
    ("idx_quantity_key", "ON idx_quantity USING btree (type, param, code_key, value, system_key, seq)"),
    ("idx_reference_key", "ON idx_reference USING btree (type, param, target_id_key, target_type_key, seq)"),
    ("idx_reference_target", "ON idx_reference USING btree (target_id_key, target_type_key)"),
    ("idx_uri_key", "ON idx_uri USING btree (type, param, value_key, seq)"),
    ("idx_composite_value", "ON idx_composite USING btree (type, param, c_code_key, c_system_key, value, seq)"),
    ("idx_fulltext_tsv", "ON idx_fulltext USING gin (tsv)"),
];

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
    migrate_to(c, LATEST)
}

/// Applies the migrations this database has not had yet up to version `last`; refuses a
/// database a newer build migrated past [`LATEST`].
pub(crate) fn migrate_to(c: &mut Client, last: i32) -> Result<usize, StoreError> {
    let mut tx = c.transaction().pg()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).pg()?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, \
         applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .pg()?;
    let done: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migration", &[]).pg()?.get(0);
    // A build older than the database would write without what later versions keep (the
    // kept totals of V6): it refuses to start rather than let them drift.
    if done > LATEST {
        return Err(StoreError::Backend(format!(
            "the database's schema is at version {done}, newer than this build knows ({LATEST}): \
             run the release that migrated it on every node"
        )));
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done && *v <= last) {
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

#[cfg(test)]
mod tests {
    use tsunagu_store::{Clause, Condition, IndexEntry, IndexValue, Method, NewVersion, SearchQuery, Store, Test};

    use super::*;
    use crate::{PostgresConfig, PostgresStore};

    fn search(store: &dyn Store, param: &str, test: Test) -> Vec<String> {
        let q = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: vec![Clause { any: vec![Condition::Index { param: param.into(), test, negate: false }] }],
            count: 10,
            ..Default::default()
        };
        store.search(&q).unwrap().resources.into_iter().map(|v| v.id).collect()
    }

    /// Letters PostgreSQL cannot compress below its B-tree entry limit.
    fn noise(len: usize) -> String {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (b'a' + ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 59) as u8) % 26) as char
            })
            .collect()
    }

    #[test]
    fn a_build_older_than_the_database_refuses_it() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let mut c = crate::pool::connect(&url).unwrap();
        migrate(&mut c).unwrap();
        c.execute("INSERT INTO schema_migration (version) VALUES ($1)", &[&(LATEST + 1)]).unwrap();
        let Err(e) = PostgresStore::open(&PostgresConfig::new(&url)) else { panic!("opened a newer schema") };
        assert!(e.to_string().contains("newer than this build knows"), "{e}");
    }

    #[test]
    fn version_6_counts_under_the_write_lock() {
        assert!(V6.contains(&format!("pg_advisory_xact_lock({})", crate::WRITE_LOCK)));
    }

    /// A database of version 1 holding index rows (which refuses a long code) is converted
    /// by version 2: its rows are still found, and long values are then accepted.
    #[test]
    fn version_1_databases_are_converted() {
        let Some(cluster) = crate::throwaway::shared() else { return };
        let url = cluster.url(&cluster.create_database());
        let mut c = crate::pool::connect(&url).unwrap();
        assert_eq!(migrate_to(&mut c, 1).unwrap(), 1);
        c.batch_execute(
            "UPDATE counter SET value = 1 WHERE name = 'seq';
             INSERT INTO resource (shard, seq, type, id, version, last_updated, deleted, current, method, body)
                 VALUES ('p1', 1, 'Observation', 'old', 1, 1, false, true, 'POST', '{}'::bytea);
             INSERT INTO idx_token (shard, type, param, code, system, seq, display)
                 VALUES ('p1', 'Observation', 'code', 'bp', 'urn:l', 1, 'blood pressure');
             INSERT INTO idx_uri (shard, type, param, value, seq) VALUES ('p1', 'Observation', 'url', 'http://e.org/a', 1);
             INSERT INTO idx_reference (shard, type, param, target_id, target_type, url, seq)
                 VALUES ('p1', 'Observation', 'subject', 'p1', 'Patient', 'Patient/p1', 1);
             INSERT INTO idx_quantity (shard, type, param, code, value, system, seq)
                 VALUES ('p1', 'Observation', 'value', 'mg', 2.0, 'urn:u', 1);
             INSERT INTO idx_composite (shard, type, param, c_code, c_system, seq, uri)
                 VALUES ('p1', 'Observation', 'code-uri', 'bp', 'urn:l', 1, 'http://e.org/a');",
        )
        .unwrap();
        let long = noise(10_000);
        let refused = c.execute(
            "INSERT INTO idx_token (shard, type, param, code, system, seq) VALUES ('p1', 'Observation', 'code', $1, '', 1)",
            &[&long],
        );
        let refused = format!("{:?}", refused.unwrap_err());
        assert!(refused.contains("index row"), "version 1 refuses a long code: {refused}");

        assert_eq!(migrate(&mut c).unwrap(), LATEST as usize - 1);
        let versions: Vec<i32> = c
            .query("SELECT version FROM schema_migration ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, (1..=LATEST).collect::<Vec<_>>());
        let def: String =
            c.query_one("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_token_key'", &[]).unwrap().get(0);
        assert!(def.contains("code_key, system_key"), "{def}");

        let store = PostgresStore::open(&PostgresConfig::new(&url)).unwrap();
        // Version 6 counted the resources already there.
        let total = SearchQuery { resource_type: Some("Observation".into()), total: true, ..Default::default() };
        assert_eq!(store.search(&total).unwrap().total, Some(1));
        let token = |code: &str| Test::Token {
            system: tsunagu_store::SystemMatch::Is("urn:l".into()),
            code: Some(code.into()),
        };
        assert_eq!(search(&store, "code", token("bp")), ["old"]);
        // Version 7 collected the displays `:text` looks codes up by.
        assert_eq!(search(&store, "code", Test::TokenText("blood".into())), ["old"]);
        assert_eq!(search(&store, "url", Test::UriBelow("http://e.org/".into())), ["old"]);
        let subject = Test::Reference { target_type: Some("Patient".into()), target_id: Some("p1".into()), url: None };
        assert_eq!(search(&store, "subject", subject), ["old"]);
        let composite = Test::Composite {
            system: tsunagu_store::SystemMatch::Any,
            code: "bp".into(),
            second: Box::new(Test::UriExact("http://e.org/a".into())),
        };
        assert_eq!(search(&store, "code-uri", composite), ["old"]);

        let index = [IndexEntry {
            param: "code".into(),
            value: IndexValue::Token { system: Some("urn:l".into()), code: long.clone(), display: None },
        }];
        store
            .write(&mut |txn| {
                txn.put(&NewVersion {
                    resource_type: "Observation",
                    id: "new",
                    version: 1,
                    last_updated_ms: 2,
                    method: Method::Post,
                    body: Some(b"{}"),
                    index: &index,
                })
            })
            .unwrap();
        assert_eq!(search(&store, "code", token(&long)), ["new"]);
        assert_eq!(search(&store, "code", token("bp")), ["old"]);
    }
}
