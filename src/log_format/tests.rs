//! The id on the line, as the binary and the tests' captured log write it.

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

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

impl Lines {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("UTF-8")
    }
}

/// What `log` writes in the JSON format.
fn json_log(log: impl FnOnce()) -> String {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(lines.clone())
        .with_ansi(false)
        .fmt_fields(JsonFields::new())
        .event_format(json())
        .finish();
    tracing::subscriber::with_default(subscriber, log);
    lines.text()
}

/// What `log` writes in the text format, without colour.
fn text_log(log: impl FnOnce()) -> String {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(lines.clone())
        .with_ansi(false)
        .event_format(text(false))
        .finish();
    tracing::subscriber::with_default(subscriber, log);
    lines.text()
}

const ID: &str = "3f2b9c0e7d4a41e8a0c95b7e2d61f4aa";

fn in_request(log: impl FnOnce()) {
    REQUEST_ID.sync_scope(HeaderValue::from_static(ID), log);
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn json_lines_inside_a_request_have_its_id_at_the_top() {
    let log = json_log(|| {
        tracing::info!("outside");
        in_request(|| {
            tracing::warn!(status = 400, path = "/a\"b", "inside");
            // The access line names its id itself: one key, never two.
            tracing::info!(request_id = ID, method = "GET", "access");
        });
        tracing::error!("after");
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    for line in &lines {
        let ids = line.matches("\"request_id\"").count();
        assert!(ids <= 1, "a duplicate key: {line}");
    }

    let outside = parse(lines[0]);
    assert_eq!(outside["message"], "outside");
    assert!(outside.get("request_id").is_none(), "{outside}");

    assert!(
        lines[1].starts_with(&format!("{{\"request_id\":\"{ID}\",\"timestamp\":")),
        "{}",
        lines[1]
    );
    let inside = parse(lines[1]);
    assert_eq!(inside["request_id"], ID);
    assert_eq!(inside["message"], "inside");
    assert_eq!(inside["status"], 400);
    assert_eq!(inside["path"], "/a\"b");
    assert_eq!(inside["level"], "WARN");
    assert!(inside.get("span").is_none(), "no span any more: {inside}");

    let access = parse(lines[2]);
    assert_eq!(access["request_id"], ID);
    assert_eq!(access["method"], "GET");

    let after = parse(lines[3]);
    assert_eq!(after["message"], "after");
    assert!(after.get("request_id").is_none(), "{after}");
}

#[test]
fn text_lines_inside_a_request_end_with_its_id() {
    let log = text_log(|| {
        tracing::info!("outside");
        in_request(|| {
            tracing::warn!(status = 400, "inside");
            tracing::info!(request_id = ID, "access");
        });
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(!lines[0].contains("request_id"), "{}", lines[0]);
    assert!(
        lines[1].ends_with(&format!("inside status=400 request_id={ID}")),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2].matches("request_id=").count(), 1, "{}", lines[2]);
    assert!(log.ends_with('\n'));
}

#[test]
fn the_formatters_object_loses_only_its_opening_brace() {
    for (pieces, expected) in [
        (&["{\"a\":1}\n"][..], "{\"request_id\":\"x\",\"a\":1}\n"),
        (
            &["{", "\"a\"", ":1", "}", "\n"][..],
            "{\"request_id\":\"x\",\"a\":1}\n",
        ),
        (&["", "{", "", "}\n"][..], "{\"request_id\":\"x\"}\n"),
    ] {
        let mut out = String::from("{\"request_id\":\"x\"");
        let mut writer = Writer::new(&mut out);
        let mut rest = AfterBrace {
            out: &mut writer,
            state: BraceState::Start,
        };
        for piece in pieces {
            rest.write_str(piece).expect("written");
        }
        assert_eq!(rest.state, BraceState::Rest);
        assert_eq!(out, expected, "{pieces:?}");
    }
    let mut out = String::new();
    let mut writer = Writer::new(&mut out);
    let mut rest = AfterBrace {
        out: &mut writer,
        state: BraceState::Start,
    };
    assert!(rest.write_str("[1]").is_err(), "not an object");
}

#[test]
fn strings_are_escaped_as_json_reads_them() {
    for value in [
        ID,
        "",
        "quote \" backslash \\ end",
        "line\nbreak\r\ttab \u{1} \u{7f} ü 日本",
    ] {
        let mut written = String::new();
        write_json_string(&mut written, value).expect("written");
        let read: String =
            serde_json::from_str(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(read, value);
    }
}
