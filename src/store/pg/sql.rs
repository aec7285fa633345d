//! The PostgreSQL store's schema and statements: two tables, created when missing, and the SQL
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
