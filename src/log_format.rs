//! The log line's format and the request id on it. [`REQUEST_ID`] is the id of the request the
//! running task serves: `Gate::serve` (proxy/traced.rs) scopes it around the request's future
//! (and the WebSocket tunnel's task). [`WithRequestId`] wraps tracing-subscriber's JSON or text
//! formatter and writes that id on every line logged inside the scope: a top-level
//! `"request_id"` in JSON, ` request_id=...` at the end of a text line. Lines outside a request
//! have none. Used by the binary's `init_logging` (main.rs) and the tests' captured log.
//!
//! A task-local instead of a tracing span: the span cost ~3,800 instructions per request
//! (opened with its fields formatted, entered and left at every poll, closed); scoping a
//! task-local is one swap of the value per poll, with no allocation (docs/logging.md, Cost).

use std::fmt::{self, Write};

use http::HeaderValue;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

tokio::task_local! {
    /// The id of the request the current task serves (`X-Request-Id`, proxy/request_id.rs).
    pub static REQUEST_ID: HeaderValue;
}

/// The field's name, on the line and on an event that carries the id itself.
const FIELD: &str = "request_id";

/// Where the id goes on the line.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// The formatter writes one JSON object a line: the id is its first field.
    JsonObject,
    /// The formatter writes a text line: the id is appended before its newline.
    TextSuffix,
}

/// A line formatter that adds the current request's id ([`REQUEST_ID`]) to every line logged
/// inside a request. An event with a `request_id` field of its own (the access line) is
/// written as it is: one key, never two.
#[derive(Debug, Clone)]
pub struct WithRequestId<F> {
    inner: F,
    placement: Placement,
}

/// The JSON format: one flattened object a line (`log.format = "json"`).
pub fn json() -> WithRequestId<Format<Json>> {
    WithRequestId {
        inner: tracing_subscriber::fmt::format().json().flatten_event(true),
        placement: Placement::JsonObject,
    }
}

/// The text format (`log.format = "text"`), in colour when `ansi`.
pub fn text(ansi: bool) -> WithRequestId<Format<Full>> {
    WithRequestId {
        inner: tracing_subscriber::fmt::format().with_ansi(ansi),
        placement: Placement::TextSuffix,
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().fields().field(FIELD).is_some() {
            return self.inner.format_event(ctx, writer, event);
        }
        match REQUEST_ID.try_with(|id| match self.placement {
            Placement::JsonObject => self.json_line(ctx, &mut writer, event, id),
            Placement::TextSuffix => self.text_line(ctx, &mut writer, event, id),
        }) {
            Ok(written) => written,
            // Outside a request.
            Err(_) => self.inner.format_event(ctx, writer, event),
        }
    }
}

impl<F> WithRequestId<F> {
    /// `{"request_id":"...",` and the formatter's object without its `{`.
    fn json_line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: &mut Writer<'_>,
        event: &Event<'_>,
        id: &HeaderValue,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'writer> FormatFields<'writer> + 'static,
        F: FormatEvent<S, N>,
    {
        writer.write_str("{\"request_id\":")?;
        write_json_string(writer, id_text(id))?;
        let mut rest = AfterBrace {
            out: writer,
            state: BraceState::Start,
        };
        self.inner
            .format_event(ctx, Writer::new(&mut rest), event)?;
        match rest.state {
            BraceState::Rest => Ok(()),
            // Not one JSON object: never from tracing-subscriber's JSON formatter.
            BraceState::Start | BraceState::Brace => Err(fmt::Error),
        }
    }

    /// The formatter's line, then ` request_id=...` before its newline.
    fn text_line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: &mut Writer<'_>,
        event: &Event<'_>,
        id: &HeaderValue,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'writer> FormatFields<'writer> + 'static,
        F: FormatEvent<S, N>,
    {
        let mut line = BeforeNewline {
            out: writer,
            newline_held: false,
        };
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let newline = line.newline_held;
        let id = id_text(id);
        if is_plain(id) {
            write!(writer, " {FIELD}={id}")?;
        } else {
            write!(writer, " {FIELD}={id:?}")?;
        }
        if newline {
            writer.write_char('\n')?;
        }
        Ok(())
    }
}

/// The id as text. Ids are ASCII by construction (proxy/request_id.rs); anything else would
/// be shown empty rather than guessed at.
fn id_text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or_default()
}

/// The id's own characters (proxy/request_id.rs `is_sane`): nothing to quote on a text line.
fn is_plain(id: &str) -> bool {
    id.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'_' | b':' | b'@' | b'/' | b'+' | b'=' | b'-')
    })
}

/// How far the formatter's JSON object has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BraceState {
    /// Nothing yet: its `{` is next, and dropped (the line's `{` is written).
    Start,
    /// After its `{`: a `,` goes before its first field, none before an empty object's `}`.
    Brace,
    /// The rest goes through as it is.
    Rest,
}

/// Passes the formatter's JSON object on without its opening `{`, so that its fields follow
/// the id's. No copy, no buffer.
struct AfterBrace<'a, 'w> {
    out: &'a mut Writer<'w>,
    state: BraceState,
}

impl Write for AfterBrace<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut s = s;
        if self.state == BraceState::Start && !s.is_empty() {
            s = s.strip_prefix('{').ok_or(fmt::Error)?;
            self.state = BraceState::Brace;
        }
        if self.state == BraceState::Brace && !s.is_empty() {
            if !s.starts_with('}') {
                self.out.write_char(',')?;
            }
            self.state = BraceState::Rest;
        }
        self.out.write_str(s)
    }
}

/// Passes the formatter's text line on, holding back a newline at the end of each piece until
/// more follows: the id goes before the line's last newline.
struct BeforeNewline<'a, 'w> {
    out: &'a mut Writer<'w>,
    newline_held: bool,
}

impl Write for BeforeNewline<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.is_empty() {
            return Ok(());
        }
        if std::mem::take(&mut self.newline_held) {
            self.out.write_char('\n')?;
        }
        match s.strip_suffix('\n') {
            Some(body) => {
                self.newline_held = true;
                self.out.write_str(body)
            }
            None => self.out.write_str(s),
        }
    }
}

/// `value` as a JSON string: quotes, backslashes and control characters escaped.
fn write_json_string(out: &mut impl Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    if !value
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || b < b' ' || b == 0x7f)
    {
        // The usual case (every id): nothing to escape.
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
mod tests;
