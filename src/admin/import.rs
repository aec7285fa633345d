//! Importing NDJSON export lines into the store, fed in chunks as they arrive (the admin API's
//! request body, the CLI's standard input): [`LineImporter`] cuts lines, bounds each to
//! [`MAX_LINE_BYTES`], checks it ([`crate::store::parse_line`]) and writes it
//! ([`ProfileStore::import`]), or reports it with its number and why, writing nothing of it.
//! The store is synced once at the end (imports are not flushed line by line), so the summary
//! is only given once everything it counts is durable.
//! Shared by `admin/users.rs` and `cli/users.rs`.

use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::store::{parse_line, Imported, ProfileRecord, ProfileStore, StoreError, UserKey};

/// The longest line read; a longer one is rejected (and skipped up to its end).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// At most this many rejected lines are listed (all are counted).
const MAX_LISTED: usize = 1000;

/// Lines of distinct users written concurrently (PostgreSQL: one transaction each, over the
/// pool's connections); a user named twice waits for the batch before it.
const BATCH: usize = 16;

/// One rejected line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based, counting every line (blank ones too).
    pub line: u64,
    pub error: String,
}

/// What an import did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records written (created or replaced).
    pub imported: u64,
    /// Lines whose record was already stored as is.
    pub unchanged: u64,
    /// The first [`MAX_LISTED`] rejected lines.
    pub rejected: Vec<Rejected>,
    /// How many lines were rejected in all.
    pub rejected_count: u64,
}

/// A store error that stopped the import at a line (what was before it is written).
#[derive(Debug)]
pub struct ImportStopped {
    pub line: u64,
    pub error: StoreError,
    pub summary: ImportSummary,
}

/// Cuts NDJSON into lines and imports them one by one.
#[derive(Default)]
pub struct LineImporter {
    pending: Vec<u8>,
    /// The current line passed the limit: the rest of it is skipped.
    too_long: bool,
    line: u64,
    summary: ImportSummary,
    /// Checked lines not written yet: (line number, user, record).
    batch: Vec<(u64, UserKey, ProfileRecord)>,
}

impl LineImporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Imports the complete lines of `chunk` (the rest waits for the next chunk).
    pub async fn feed(
        &mut self,
        store: &Arc<dyn ProfileStore>,
        mut chunk: &[u8],
    ) -> Result<(), ImportStopped> {
        while !chunk.is_empty() {
            let end = chunk.iter().position(|b| *b == b'\n');
            let (part, rest) = match end {
                Some(at) => (&chunk[..at], &chunk[at + 1..]),
                None => (chunk, &[][..]),
            };
            if !self.too_long {
                if self.pending.len() + part.len() > MAX_LINE_BYTES {
                    self.too_long = true;
                    self.pending = Vec::new();
                } else {
                    self.pending.extend_from_slice(part);
                }
            }
            if end.is_some() {
                self.end_line(store).await?;
            }
            chunk = rest;
        }
        Ok(())
    }

    /// Imports a last line without a newline, makes every imported record durable
    /// ([`ProfileStore::sync`]) and returns the summary.
    pub async fn finish(
        mut self,
        store: &Arc<dyn ProfileStore>,
    ) -> Result<ImportSummary, ImportStopped> {
        if !self.pending.is_empty() || self.too_long {
            self.end_line(store).await?;
        }
        self.write_batch(store).await?;
        if let Err(error) = store.sync().await {
            return Err(ImportStopped {
                line: self.line,
                error,
                summary: self.summary,
            });
        }
        Ok(self.summary)
    }

    async fn end_line(&mut self, store: &Arc<dyn ProfileStore>) -> Result<(), ImportStopped> {
        self.line += 1;
        let line = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.too_long) {
            // Earlier lines first, so the rejected ones are listed in order.
            self.write_batch(store).await?;
            self.reject(format!("longer than {MAX_LINE_BYTES} bytes"));
            return Ok(());
        }
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match parse_line(text) {
            Ok((user, record)) => {
                if self.batch.iter().any(|(_, u, _)| *u == user) {
                    self.write_batch(store).await?;
                }
                self.batch.push((self.line, user, record));
                if self.batch.len() >= BATCH {
                    self.write_batch(store).await?;
                }
            }
            Err(why) => {
                self.write_batch(store).await?;
                self.reject(why);
            }
        }
        Ok(())
    }

    /// Writes the batch concurrently and counts it in line order; a store error other than a
    /// refused value stops the import at the first line it hit.
    async fn write_batch(&mut self, store: &Arc<dyn ProfileStore>) -> Result<(), ImportStopped> {
        let mut writes = JoinSet::new();
        for (index, (line, user, record)) in self.batch.drain(..).enumerate() {
            let store = store.clone();
            writes.spawn(async move { (index, line, store.import(&user, &record).await) });
        }
        let mut done = Vec::with_capacity(writes.len());
        while let Some(joined) = writes.join_next().await {
            match joined {
                Ok(result) => done.push(result),
                Err(e) => {
                    return Err(ImportStopped {
                        line: self.line,
                        error: StoreError::Unavailable(format!("an import task failed: {e}")),
                        summary: std::mem::take(&mut self.summary),
                    })
                }
            }
        }
        done.sort_by_key(|(index, _, _)| *index);
        let mut stopped = None;
        for (_, line, result) in done {
            match result {
                Ok(Imported::Unchanged) => self.summary.unchanged += 1,
                Ok(Imported::Created | Imported::Replaced) => self.summary.imported += 1,
                Err(StoreError::Invalid(why)) => self.reject_line(line, why),
                Err(error) => {
                    stopped.get_or_insert((line, error));
                }
            }
        }
        match stopped {
            Some((line, error)) => Err(ImportStopped {
                line,
                error,
                summary: std::mem::take(&mut self.summary),
            }),
            None => Ok(()),
        }
    }

    fn reject(&mut self, error: String) {
        self.reject_line(self.line, error);
    }

    fn reject_line(&mut self, line: u64, error: String) {
        self.summary.rejected_count += 1;
        if self.summary.rejected.len() < MAX_LISTED {
            self.summary.rejected.push(Rejected { line, error });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SledOptions, SledStore};

    fn line(sub: &str, logins: u64) -> String {
        format!(
            "{{\"issuer\":\"https://op.example\",\"sub\":\"{sub}\",\"record\":{{\"v\":1,\"logins\":{logins}}}}}\n"
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_in_any_chunking_import_in_order_and_bad_ones_are_listed_by_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ProfileStore> = Arc::new(
            SledStore::open(dir.path(), SledOptions::default())
                .await
                .expect("store"),
        );
        let mut input = String::new();
        for n in 0..40 {
            input.push_str(&line(&format!("u{n}"), 1));
        }
        input.push_str("{bad\n");
        input.push_str(&line("u3", 7)); // the same user again: the later line wins
        input.push('\n');
        input.push_str(&"x".repeat(MAX_LINE_BYTES + 5));
        input.push('\n');
        input.push_str(line("last", 2).trim_end()); // no final newline
        let mut importer = LineImporter::new();
        for chunk in input.as_bytes().chunks(977) {
            importer.feed(&store, chunk).await.expect("feed");
        }
        let summary = importer.finish(&store).await.expect("finish");
        assert_eq!(
            (summary.imported, summary.unchanged),
            (42, 0),
            "{summary:?}"
        );
        let lines: Vec<u64> = summary.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [41, 44], "{summary:?}");
        assert_eq!(summary.rejected_count, 2);
        let u3 = store
            .load(&UserKey::new("https://op.example", "u3"))
            .await
            .expect("load")
            .expect("stored");
        assert_eq!(u3.logins, 7);
        // Again: the same state; only u3, named twice with different records, is written
        // again (once per line), and ends as the later line says.
        let mut again = LineImporter::new();
        again.feed(&store, input.as_bytes()).await.expect("feed");
        let summary = again.finish(&store).await.expect("finish");
        assert_eq!(
            (summary.imported, summary.unchanged),
            (2, 40),
            "{summary:?}"
        );
        let u3 = store
            .load(&UserKey::new("https://op.example", "u3"))
            .await
            .expect("load")
            .expect("stored");
        assert_eq!(u3.logins, 7);
    }
}
