//! Importing NDJSON export lines into the store, fed in chunks as they arrive (the admin API's
//! request body, the CLI's standard input): [`LineImporter`] cuts lines, bounds each to
//! [`MAX_LINE_BYTES`], checks it ([`crate::store::parse_line`]) and writes it
//! ([`ProfileStore::import`]), or reports it with its number and why, writing nothing of it.
//! The store is synced once at the end (imports are not flushed line by line), so the summary
//! is only given once everything it counts is durable.
//! Shared by `admin/users.rs` and `cli/users.rs`.

use serde::Serialize;

use crate::store::{parse_line, Imported, ProfileStore, StoreError};

/// The longest line read; a longer one is rejected (and skipped up to its end).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// At most this many rejected lines are listed (all are counted).
const MAX_LISTED: usize = 1000;

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
}

impl LineImporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Imports the complete lines of `chunk` (the rest waits for the next chunk).
    pub async fn feed(
        &mut self,
        store: &dyn ProfileStore,
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

    /// Imports a last line without a newline and returns the summary.
    pub async fn finish(
        mut self,
        store: &dyn ProfileStore,
    ) -> Result<ImportSummary, ImportStopped> {
        if !self.pending.is_empty() || self.too_long {
            self.end_line(store).await?;
        }
        Ok(self.summary)
    }

    async fn end_line(&mut self, store: &dyn ProfileStore) -> Result<(), ImportStopped> {
        self.line += 1;
        let line = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.too_long) {
            self.reject(format!("longer than {MAX_LINE_BYTES} bytes"));
            return Ok(());
        }
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let (user, record) = match parse_line(text) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.reject(why);
                return Ok(());
            }
        };
        match store.import(&user, &record).await {
            Ok(Imported::Unchanged) => self.summary.unchanged += 1,
            Ok(Imported::Created | Imported::Replaced) => self.summary.imported += 1,
            Err(StoreError::Invalid(why)) => self.reject(why),
            Err(error) => {
                return Err(ImportStopped {
                    line: self.line,
                    error,
                    summary: std::mem::take(&mut self.summary),
                })
            }
        }
        Ok(())
    }

    fn reject(&mut self, error: String) {
        self.summary.rejected_count += 1;
        if self.summary.rejected.len() < MAX_LISTED {
            self.summary.rejected.push(Rejected {
                line: self.line,
                error,
            });
        }
    }
}
