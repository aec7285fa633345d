//! The PostgreSQL store's schema and statements: three tables, created when missing, and the SQL
//! every operation runs. The layout is described in the parent module; changing a statement here
//! must not change the schema (there are no migrations).

/// The layout version in `profilegate_meta`.
pub(super) const FORMAT_VALUE: &[u8] = b"1";
/// Taken (per transaction) while creating the tables: an arbitrary constant of profilegate's.
pub(super) const SCHEMA_LOCK: i64 = 0x7072_6f66_696c_6567; // "profileg"

pub(super) const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS profilegate_meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
)";
pub(super) const CREATE_USERS: &str = "CREATE TABLE IF NOT EXISTS profilegate_users (
    issuer text NOT NULL,
    subject bytea NOT NULL,
    record json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
)";
pub(super) const SELECT_RECORD: &str =
    "SELECT record::text FROM profilegate_users WHERE issuer = $1 AND subject = $2";
pub(super) const SELECT_RECORD_FOR_UPDATE: &str =
    "SELECT record::text FROM profilegate_users WHERE issuer = $1 AND subject = $2 FOR UPDATE";
pub(super) const UPDATE_RECORD: &str =
    "UPDATE profilegate_users SET record = $3::text::json, updated_at = now()
    WHERE issuer = $1 AND subject = $2";
pub(super) const INSERT_RECORD: &str = "INSERT INTO profilegate_users (issuer, subject, record)
    VALUES ($1, $2, $3::text::json) ON CONFLICT (issuer, subject) DO NOTHING";
pub(super) const SELECT_META: &str = "SELECT value FROM profilegate_meta WHERE name = $1";
pub(super) const INSERT_META: &str =
    "INSERT INTO profilegate_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(super) const DELETE_RECORD: &str =
    "DELETE FROM profilegate_users WHERE issuer = $1 AND subject = $2";
pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";
pub(super) const SCAN_FIRST: &str = "SELECT issuer, subject, record::text FROM profilegate_users
    ORDER BY issuer, subject LIMIT $1";
pub(super) const SCAN_AFTER: &str = "SELECT issuer, subject, record::text FROM profilegate_users
    WHERE (issuer, subject) > ($1, $2) ORDER BY issuer, subject LIMIT $3";

// ---- Question funnel (issue 18, D) ----

/// One row per question id and version: its counters and the answer-time histogram's buckets
/// (not cumulative; `funnel::ANSWER_SECONDS_BOUNDS` and `+Inf`). No user data.
pub(super) const CREATE_FUNNEL: &str = "CREATE TABLE IF NOT EXISTS profilegate_funnel (
    question text NOT NULL,
    version integer NOT NULL,
    shown bigint NOT NULL DEFAULT 0,
    answered bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    invalid bigint NOT NULL DEFAULT 0,
    answer_count bigint NOT NULL DEFAULT 0,
    answer_millis_sum bigint NOT NULL DEFAULT 0,
    answer_buckets bigint[] NOT NULL,
    PRIMARY KEY (question, version)
)";
/// Adds a delta to a row (creating it): one atomic upsert, the buckets added element-wise.
pub(super) const ADD_FUNNEL: &str = "INSERT INTO profilegate_funnel AS f (question, version,
    shown, answered, skipped, invalid, answer_count, answer_millis_sum, answer_buckets)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (question, version) DO UPDATE SET
        shown = f.shown + excluded.shown,
        answered = f.answered + excluded.answered,
        skipped = f.skipped + excluded.skipped,
        invalid = f.invalid + excluded.invalid,
        answer_count = f.answer_count + excluded.answer_count,
        answer_millis_sum = f.answer_millis_sum + excluded.answer_millis_sum,
        answer_buckets = ARRAY(
            SELECT coalesce(a, 0) + coalesce(b, 0)
            FROM unnest(f.answer_buckets, excluded.answer_buckets) WITH ORDINALITY AS t(a, b, i)
            ORDER BY i)";
pub(super) const SELECT_FUNNEL: &str = "SELECT question, version, shown, answered, skipped,
    invalid, answer_count, answer_millis_sum, answer_buckets
    FROM profilegate_funnel ORDER BY question, version";

// ---- Session records (issue 19; `sessions.rs`) ----

/// The session records, the revocation log and the use-once marks (see `sessions.rs`).
pub(super) const CREATE_SESSIONS: &str = "
CREATE TABLE IF NOT EXISTS profilegate_sessions (
    sid text PRIMARY KEY,
    sub bytea NOT NULL,
    op_sid bytea,
    expires_at bigint NOT NULL,
    record json NOT NULL
);
CREATE INDEX IF NOT EXISTS profilegate_sessions_sub ON profilegate_sessions (sub);
CREATE INDEX IF NOT EXISTS profilegate_sessions_op_sid ON profilegate_sessions (op_sid)
    WHERE op_sid IS NOT NULL;
CREATE INDEX IF NOT EXISTS profilegate_sessions_expires ON profilegate_sessions (expires_at);
CREATE TABLE IF NOT EXISTS profilegate_revocations (
    id bigserial PRIMARY KEY,
    logged_ms bigint NOT NULL
        DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    until bigint NOT NULL,
    line json NOT NULL
);
CREATE INDEX IF NOT EXISTS profilegate_revocations_logged
    ON profilegate_revocations (logged_ms);
CREATE TABLE IF NOT EXISTS profilegate_used_once (
    key bytea PRIMARY KEY,
    until bigint NOT NULL
)";
