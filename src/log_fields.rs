//! How a span's fields are kept for the JSON log ([`JsonSpanFields`]): written once, when the
//! span opens, as the JSON object the log lines inside it repeat under `span` and `spans`.
//! Used by the binary's `init_logging` (main.rs) and the tests' captured log. Every request
//! opens one span (its `request_id`, proxy/traced.rs), so this is on the hot path.
//!
//! tracing-subscriber's own `JsonFields` collects the fields into a map of JSON values and
//! serializes that (about 2,800 instructions for the one `request_id` field); this writes the
//! object directly (a few hundred). The output is the same JSON object, fields in the order
//! they were recorded.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// Span fields as one JSON object (`{"request_id":"..."}`), for `fmt().json()`'s
/// `fmt_fields`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = ObjectWriter::new(&mut writer, true);
        visitor.result = visitor.buf.write_char('{');
        fields.record(&mut visitor);
        visitor.finish()
    }

    /// Fields recorded later (`Span::record`) join the object.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        // `{...}` without its `}`; the fields go after what is there.
        if current.fields.ends_with('}') {
            current.fields.pop();
        }
        let first = current.fields == "{";
        let mut writer = current.as_writer();
        let mut visitor = ObjectWriter::new(&mut writer, first);
        fields.record(&mut visitor);
        visitor.finish()
    }
}

/// Writes each field as `"name":value`, comma-separated, then `}`. Small pieces gather on
/// the stack and reach the span's string in one piece: each write to it may grow it.
struct ObjectWriter<'a, 'w> {
    buf: Gathered<'a, 'w>,
    first: bool,
    result: fmt::Result,
}

impl<'a, 'w> ObjectWriter<'a, 'w> {
    fn new(out: &'a mut Writer<'w>, first: bool) -> Self {
        Self {
            buf: Gathered {
                out,
                bytes: [0; GATHERED],
                len: 0,
            },
            first,
            result: Ok(()),
        }
    }

    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.buf.write_char(',')?;
        }
        write_json_string(&mut self.buf, field.name())?;
        self.buf.write_char(':')
    }

    fn string(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self
                .key(field)
                .and_then(|()| write_json_string(&mut self.buf, value));
        }
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.buf.write_fmt(value));
        }
    }

    /// Closes the object and writes what is gathered.
    fn finish(mut self) -> fmt::Result {
        self.result?;
        self.buf.write_char('}')?;
        self.buf.flush()
    }
}

/// Bytes gathered before they are written out.
const GATHERED: usize = 256;

struct Gathered<'a, 'w> {
    out: &'a mut Writer<'w>,
    bytes: [u8; GATHERED],
    len: usize,
}

impl Gathered<'_, '_> {
    fn flush(&mut self) -> fmt::Result {
        // Only whole `&str`s are gathered: always UTF-8.
        let gathered = std::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)?;
        self.out.write_str(gathered)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for Gathered<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > GATHERED {
            self.flush()?;
            if s.len() > GATHERED {
                return self.out.write_str(s);
            }
        }
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

impl Visit for ObjectWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value}"));
        } else {
            // JSON has no NaN or infinity.
            self.string(field, &value.to_string());
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.string(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, &format!("{value:?}"));
    }
}

/// `value` as a JSON string: quotes, backslashes and control characters escaped.
fn write_json_string(out: &mut impl Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    if !value
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || b < b' ' || b == 0x7f)
    {
        // The usual case: nothing to escape.
        out.write_str(value)?;
        return out.write_char('"');
    }
    let mut plain = 0;
    for (i, c) in value.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' || c == '\u{7f}' => "",
            _ => continue,
        };
        out.write_str(&value[plain..i])?;
        if escaped.is_empty() {
            write!(out, "\\u{:04x}", u32::from(c))?;
        } else {
            out.write_str(escaped)?;
        }
        plain = i + c.len_utf8();
    }
    out.write_str(&value[plain..])?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: &str) -> String {
        let mut out = String::new();
        write_json_string(&mut out, value).expect("written");
        out
    }

    #[test]
    fn strings_are_escaped_as_json_reads_them() {
        for value in [
            "3f2b9c0e7d4a41e8a0c95b7e2d61f4aa",
            "",
            "quote \" backslash \\ end",
            "line\nbreak\r\ttab \u{1} \u{7f} ü 日本",
        ] {
            let written = json(value);
            let read: String =
                serde_json::from_str(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(read, value);
        }
    }

    #[test]
    fn span_fields_are_one_json_object_and_later_fields_join_it() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Lines {
            type Writer = Lines;
            fn make_writer(&'a self) -> Lines {
                self.clone()
            }
        }

        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .json()
            .flatten_event(true)
            .fmt_fields(JsonSpanFields)
            .finish();
        // Longer than what is gathered on the stack.
        let long = "é".repeat(200);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!(
                "request",
                request_id = "abc\"1",
                long = long.as_str(),
                n = 3_u64,
                ok = true,
                later = tracing::field::Empty
            );
            let _in = span.enter();
            span.record("later", -2_i64);
            tracing::error!(x = 1, "inside");
        });
        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("UTF-8");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(
            line["span"],
            serde_json::json!({
                "request_id": "abc\"1", "long": long, "n": 3, "ok": true, "later": -2,
                "name": "request"
            }),
            "{text}"
        );
        assert_eq!(line["message"], "inside");
    }
}
