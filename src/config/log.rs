//! `[log]`: the log filter and format ([`LogConfig`]), and the code that reads them.

use super::reader::SectionReader;

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `log.level`: a filter such as `info` or `profilegate=debug,info`. Default `info`.
    pub level: String,
    /// `log.format`: `json` (default) or `text`.
    pub format: LogFormat,
    /// `log.access`: one `profilegate::access` line per request at info level. Default false.
    pub access: bool,
}

impl LogConfig {
    /// The log filter: `log.level`, and with `log.access` the access lines whatever the level
    /// (`log.level = "warn"` keeps them).
    pub fn filter(&self) -> String {
        match self.access {
            true => format!("{},profilegate::access=info", self.level),
            false => self.level.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

pub(super) fn read_log(mut r: SectionReader<'_>) -> Option<LogConfig> {
    let level = r.string("level").unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        r.error(
            "level",
            format!("{level:?} is not a log filter such as \"info\" or \"profilegate=debug\""),
        );
    }
    let format = match r.string("format").as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            r.error(
                "format",
                format!("{other:?} is not a log format; use \"json\" or \"text\""),
            );
            LogFormat::Json
        }
    };
    let access = r.boolean("access").unwrap_or(false);
    r.finish();
    Some(LogConfig {
        level,
        format,
        access,
    })
}
