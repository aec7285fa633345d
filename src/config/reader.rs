//! Typed reading of one raw TOML section, collecting every error with its key instead of
//! stopping at the first (serde's `deny_unknown_fields` would report only one).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use url::Url;

use super::error::ConfigError;
use super::hints;
use super::secret::Secret;

/// Largest file a `*_file` secret may name: secrets are short; a bigger file is a wrong path.
const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// Keys set from the environment: their values arrive as strings and are coerced.
pub(super) type EnvKeys = BTreeSet<String>;

/// Reads the keys of one section (or one entry of an array of tables) and remembers what it
/// read, so `finish` can report every key nobody asked for.
pub(super) struct SectionReader<'a> {
    name: String,
    table: Table,
    env_keys: &'a EnvKeys,
    base_dir: &'a Path,
    errors: &'a mut Vec<ConfigError>,
    read: BTreeSet<String>,
}

impl<'a> SectionReader<'a> {
    pub(super) fn new(
        name: impl Into<String>,
        table: Table,
        env_keys: &'a EnvKeys,
        base_dir: &'a Path,
        errors: &'a mut Vec<ConfigError>,
    ) -> Self {
        Self {
            name: name.into(),
            table,
            env_keys,
            base_dir,
            errors,
            read: BTreeSet::new(),
        }
    }

    /// Full dotted name of `key` in this section, e.g. `oidc.client_secret`.
    pub(super) fn key(&self, key: &str) -> String {
        format!("{}.{}", self.name, key)
    }

    /// The key as shown in an error: the environment variable is named when it set the value.
    fn shown(&self, key: &str) -> String {
        let full = self.key(key);
        if self.env_keys.contains(&full) {
            format!("{full} (from {})", env_var_name(&full))
        } else {
            full
        }
    }

    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
        let key = self.shown(key);
        self.errors.push(ConfigError::new(key, message));
    }

    /// Reports an error under `full_key` as given (a key outside this section, as `routes[2]`).
    pub(super) fn report_at(&mut self, full_key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::new(full_key, message));
    }

    /// How many errors have been reported so far (by any reader), to tell whether a step added one.
    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.read.insert(key.to_owned());
        self.table.remove(key)
    }

    /// True when an error about `key` of this section was already reported.
    pub(super) fn has_error_for(&self, key: &str) -> bool {
        let shown = self.shown(key);
        self.errors.iter().any(|e| e.key == shown)
    }

    /// True when `key` of this section was set by its `PROFILEGATE_*` environment variable.
    pub(super) fn set_by_env(&self, key: &str) -> bool {
        self.env_keys.contains(&self.key(key))
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub(super) fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            other => {
                self.error(
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn required_string(&mut self, key: &str) -> Option<String> {
        let value = self.string(key);
        match value {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.error(key, "must not be empty");
                None
            }
            None if self.read_failed(key) => None,
            None => {
                self.error(key, "is required");
                None
            }
        }
    }

    /// True when `key` was present but had the wrong type (an error was already reported).
    fn read_failed(&self, key: &str) -> bool {
        let shown = self.shown(key);
        self.errors.iter().any(|e| e.key == shown)
    }

    pub(super) fn integer(&mut self, key: &str) -> Option<i64> {
        let env = self.env_keys.contains(&self.key(key));
        match self.take(key)? {
            Value::Integer(i) => Some(i),
            Value::String(s) if env => match s.trim().parse() {
                Ok(i) => Some(i),
                Err(_) => {
                    self.error(key, format!("expected an integer, found {s:?}"));
                    None
                }
            },
            other => {
                self.error(
                    key,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub(super) fn integer_in(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.integer(key)?;
        if value < min || value > max {
            self.error(
                key,
                format!("must be between {min} and {max}, found {value}"),
            );
            return None;
        }
        Some(value)
    }

    /// A size in bytes within `min..=max`: an integer (bytes) or a string with a binary unit,
    /// such as `"16MiB"`, `"512 KiB"`, `"1GiB"` or `"4096"`.
    pub(super) fn byte_size(&mut self, key: &str, min: u64, max: u64) -> Option<u64> {
        let parsed = match self.take(key)? {
            Value::Integer(i) => u64::try_from(i).map_err(|_| format!("{i} is negative")),
            Value::String(s) => parse_byte_size(&s),
            other => Err(format!(
                "expected a size such as \"16MiB\", found {}",
                other.type_str()
            )),
        };
        match parsed {
            Ok(bytes) if (min..=max).contains(&bytes) => Some(bytes),
            Ok(bytes) => {
                self.error(
                    key,
                    format!(
                        "must be between {} and {}, found {}",
                        show_bytes(min),
                        show_bytes(max),
                        show_bytes(bytes)
                    ),
                );
                None
            }
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// `true` or `false`. From the environment, the strings `true` or `false`.
    pub(super) fn boolean(&mut self, key: &str) -> Option<bool> {
        let env = self.env_keys.contains(&self.key(key));
        match self.take(key)? {
            Value::Boolean(b) => Some(b),
            Value::String(s) if env => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => {
                    self.error(key, format!("expected true or false, found {s:?}"));
                    None
                }
            },
            other => {
                self.error(
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// The raw value of `key`, for keys whose type depends on another key.
    pub(super) fn value(&mut self, key: &str) -> Option<Value> {
        self.take(key)
    }

    /// An array of tables (`[[section.key]]`).
    pub(super) fn table_array(&mut self, key: &str) -> Option<Vec<Table>> {
        match self.take(key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Table(t) => out.push(t),
                        other => {
                            self.error(
                                &format!("{key}[{i}]"),
                                format!("expected a table, found {}", other.type_str()),
                            );
                        }
                    }
                }
                Some(out)
            }
            other => {
                self.error(
                    key,
                    format!(
                        "expected an array of tables ([[{}]]), found {}",
                        self.key(key),
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    /// A reader for one table nested in this section (an entry of an array of tables), named
    /// e.g. `profiling.questions[2]`; it reports into the same error list.
    pub(super) fn nested(&mut self, name: impl Into<String>, table: Table) -> SectionReader<'_> {
        SectionReader::new(name, table, self.env_keys, self.base_dir, self.errors)
    }

    /// A list of strings. From the environment, a comma- or space-separated string.
    pub(super) fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let env = self.env_keys.contains(&self.key(key));
        match self.take(key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            self.error(
                                &format!("{key}[{i}]"),
                                format!("expected a string, found {}", other.type_str()),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Value::String(s) if env => Some(
                s.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|part| !part.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            other => {
                self.error(
                    key,
                    format!("expected a list of strings, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A duration written like `8h`, `30m`, `90s`, `1h 30m`.
    pub(super) fn duration(&mut self, key: &str, min: Duration, max: Duration) -> Option<Duration> {
        let raw = self.string(key)?;
        match humantime::parse_duration(raw.trim()) {
            Ok(d) if d < min || d > max => {
                self.error(
                    key,
                    format!(
                        "must be between {} and {}, found {raw:?}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    key,
                    format!("expected a duration such as \"8h\" or \"30m\" ({e})"),
                );
                None
            }
        }
    }

    /// A secret given inline as `key` or read from the file named by `key_file`.
    /// Returns `None` (without error) when neither is present.
    pub(super) fn secret(&mut self, key: &str) -> Option<Secret> {
        self.inline_or_file(key, MAX_SECRET_FILE_BYTES)
            .map(Secret::new)
    }

    /// Text given inline as `key` or read from the file named by `key_file` (at most
    /// `max_bytes`, trailing line breaks removed). Returns `None` (without error) when neither
    /// is present.
    pub(super) fn inline_or_file(&mut self, key: &str, max_bytes: u64) -> Option<String> {
        let file_key = format!("{key}_file");
        let inline_given = self.has(key);
        let file_given = self.has(&file_key);
        let inline = self.string(key);
        let file = self.string(&file_key);
        if inline_given && file_given {
            self.error(key, format!("give either {key} or {file_key}, not both"));
            return None;
        }
        if let Some(value) = inline {
            return Some(value);
        }
        let path = self.path_from(file?);
        // The size is checked before reading, so a wrong path (a disk image, /dev/zero) is cheap.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > max_bytes => {
                self.error(
                    &file_key,
                    format!(
                        "file {} is {} bytes; at most {max_bytes} are allowed",
                        path.display(),
                        meta.len()
                    ),
                );
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.error(&file_key, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        }
        // Bounded again while reading: devices and pseudo-files (/dev/zero, /proc) report a
        // size of 0 and never end.
        let read = std::fs::File::open(&path).and_then(|file| {
            let mut content = String::new();
            file.take(max_bytes + 1).read_to_string(&mut content)?;
            Ok(content)
        });
        match read {
            Ok(content) if content.len() as u64 > max_bytes => {
                self.error(
                    &file_key,
                    format!("file {} is larger than {max_bytes} bytes", path.display()),
                );
                None
            }
            Ok(content) => {
                let trimmed = content.trim_end_matches(['\r', '\n']).to_owned();
                if trimmed.is_empty() {
                    self.error(&file_key, format!("file {} is empty", path.display()));
                    return None;
                }
                Some(trimmed)
            }
            Err(e) => {
                self.error(&file_key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// True when the secret `key` or `key_file` is present (before reading it).
    pub(super) fn has_secret(&self, key: &str) -> bool {
        self.has(key) || self.has(&format!("{key}_file"))
    }

    /// A path relative to the configuration file's directory.
    pub(super) fn path_from(&self, raw: String) -> PathBuf {
        let p = PathBuf::from(raw);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    /// Reports every key that was present but never read.
    pub(super) fn finish(mut self) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !self.read.contains(*k))
            .cloned()
            .collect();
        let known: Vec<&str> = self.read.iter().map(String::as_str).collect();
        let messages: Vec<(String, String)> = unknown
            .into_iter()
            .map(|key| {
                let message = hints::unknown("unknown key", &key, &known);
                (key, message)
            })
            .collect();
        for (key, message) in messages {
            self.error(&key, message);
        }
    }
}

/// `oidc.client_secret` -> `PROFILEGATE_OIDC_CLIENT_SECRET`.
pub(super) fn env_var_name(dotted: &str) -> String {
    format!(
        "PROFILEGATE_{}",
        dotted.replace('.', "_").to_ascii_uppercase()
    )
}

/// `"16MiB"` -> 16777216. Binary units only (`B`, `KiB`, `MiB`, `GiB`), a space allowed before
/// the unit; a bare number is bytes.
fn parse_byte_size(raw: &str) -> Result<u64, String> {
    let not_a_size = || {
        format!("{raw:?} is not a size; write a number of bytes or a number with KiB, MiB or GiB, such as \"16MiB\"")
    };
    let text = raw.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(not_a_size()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(not_a_size)
}

/// A size for messages: `16 MiB`, `1536 KiB`, `100 bytes`.
fn show_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

pub(super) fn http_url(r: &mut SectionReader<'_>, key: &str, raw: &str) -> Option<Url> {
    if let Some(message) = hints::missing_scheme(raw) {
        r.error(key, message);
        return None;
    }
    match Url::parse(raw.trim()) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => {
            Some(u)
        }
        Ok(_) => {
            r.error(key, "must be an http:// or https:// URL with a host");
            None
        }
        Err(e) => {
            r.error(key, format!("not a valid URL ({e})"));
            None
        }
    }
}
