//! The access log: one line per request, formatted by hand and handed to the log writer thread.
//!
//! `tracing`'s generic formatter (field visitors, `Debug` escaping, styling, its clock) cost
//! more instructions than authenticating the request, so this one hot line skips it. Its text
//! form reads like the other `tracing` lines, its JSON form like `[log] format = "json"`, and
//! it obeys the same filter (target `portcullis::access`, level INFO).

use std::io::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use tracing_appender::non_blocking::NonBlocking;

use crate::config::LogFormat;

#[derive(Clone, Default)]
pub struct AccessLog {
    sink: Option<NonBlocking>,
    json: bool,
}

/// What one line says about one request. Never a credential: the path is without its query.
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub client: IpAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub user: Option<&'a str>,
    pub auth: Option<&'a str>,
    pub latency_us: u64,
}

impl AccessLog {
    /// Writes nowhere: in-process embedding, tests, benchmarks.
    pub fn disabled() -> AccessLog {
        AccessLog::default()
    }

    pub fn new(sink: NonBlocking, format: LogFormat) -> AccessLog {
        AccessLog {
            sink: Some(sink),
            json: format == LogFormat::Json,
        }
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let Some(sink) = &self.sink else { return };
        if !tracing::enabled!(target: "portcullis::access", tracing::Level::INFO) {
            return;
        }
        let mut line = Vec::with_capacity(256);
        let now = humantime::format_rfc3339_micros(SystemTime::now());
        let written = if self.json {
            json_line(&mut line, &now, entry)
        } else {
            text_line(&mut line, &now, entry)
        };
        if written.is_ok() {
            let _ = sink.clone().write_all(&line);
        }
    }
}

fn text_line(out: &mut Vec<u8>, now: &dyn std::fmt::Display, e: &Entry<'_>) -> std::io::Result<()> {
    write!(out, "{now}  INFO portcullis::access: request_id=")?;
    quoted(out, e.request_id);
    write!(out, " client={} method={} path=", e.client, e.method)?;
    quoted(out, e.path);
    write!(out, " status={} user=", e.status)?;
    quoted(out, e.user.unwrap_or("-"));
    out.extend_from_slice(b" auth=");
    quoted(out, e.auth.unwrap_or("-"));
    writeln!(out, " latency_us={}", e.latency_us)
}

/// `"value"`, escaped as `Debug` would only when it has to be: most values need no escaping,
/// and `Debug` walks them a character at a time.
fn quoted(out: &mut Vec<u8>, value: &str) {
    let plain = |b: u8| (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ';
    if value.bytes().all(plain) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{value:?}");
    }
}

fn json_line(out: &mut Vec<u8>, now: &dyn std::fmt::Display, e: &Entry<'_>) -> std::io::Result<()> {
    let line = serde_json::json!({
        "timestamp": now.to_string(),
        "level": "INFO",
        "target": "portcullis::access",
        "request_id": e.request_id,
        "client": e.client.to_string(),
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "user": e.user,
        "auth": e.auth,
        "latency_us": e.latency_us,
    });
    serde_json::to_writer(&mut *out, &line)?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            request_id: "r-1",
            client: "192.0.2.7".parse().unwrap(),
            method: "GET",
            path: "/app/\"quoted\"",
            status: 200,
            user: Some("alice"),
            auth: Some("jwt"),
            latency_us: 42,
        }
    }

    #[test]
    fn text_lines_read_like_the_other_log_lines() {
        let mut out = Vec::new();
        text_line(&mut out, &"2026-01-01T00:00:00Z", &entry()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:00Z  INFO portcullis::access: request_id=\"r-1\" client=192.0.2.7 method=GET \
             path=\"/app/\\\"quoted\\\"\" status=200 user=\"alice\" auth=\"jwt\" latency_us=42\n"
        );
    }

    #[test]
    fn json_lines_are_json() {
        let mut out = Vec::new();
        json_line(&mut out, &"2026-01-01T00:00:00Z", &entry()).unwrap();
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["target"], "portcullis::access");
        assert_eq!(line["path"], "/app/\"quoted\"");
        assert_eq!(line["status"], 200);
    }
}
