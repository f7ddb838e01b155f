//! Structured logs on stderr: human-readable or JSON. `RUST_LOG` overrides the levels.
//! Colours only on a terminal: a log file or a pipe gets plain text.

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Pretty => builder.init(),
        // The current span names the request; the list of enclosing spans would repeat it.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(SpanFields)
            .init(),
    }
}

/// A span's fields as a JSON object, written as they come. The subscriber's own JSON field
/// formatter builds a map of `serde_json::Value`s first, for every request's span, though
/// only a request that logs ever reads them: 9 % of a JWKS answer's instructions.
struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        let mut object = JsonObject {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut object);
        object.result?;
        writer.write_char('}')
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        // `{"a":1}` and b become `{"a":1,"b":2}`.
        if current.fields.pop() != Some('}') {
            current.fields.clear();
            return self.format_fields(current.as_writer(), fields);
        }
        let first = current.fields == "{";
        let mut writer = current.as_writer();
        let mut object = JsonObject {
            writer: &mut writer,
            first,
            result: Ok(()),
        };
        fields.record(&mut object);
        object.result?;
        writer.write_char('}')
    }
}

struct JsonObject<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl JsonObject<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) { "" } else { "," };
        self.result = (|| {
            write!(self.writer, "{separator}\"")?;
            Escaped(&mut *self.writer).write_str(field.name())?;
            self.writer.write_str("\":")?;
            value(self.writer)
        })();
    }

    fn string(&mut self, field: &Field, value: impl fmt::Display) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value}")?;
            w.write_char('"')
        });
    }
}

impl Visit for JsonObject<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format_args!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }
}

/// Writes through, escaped for the inside of a JSON string (RFC 8259 §7).
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escaped = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                c if c < ' ' => None,
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            match escaped {
                Some(escaped) => self.0.write_str(escaped)?,
                None => write!(self.0, "\\u{:04x}", u32::from(c))?,
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the JSON log shows of a request's span when `fields` is recorded in it, and more
    /// recorded later.
    fn span_json(record: impl FnOnce(&tracing::Span)) -> serde_json::Value {
        let (lines, writer) = captured();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(SpanFields)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = %"a\"quote\\and\ncontrol\u{1}",
                client_ip = tracing::field::Empty,
                count = 3u64,
                delta = -2i64,
                ok = true,
                path = "/caf\u{e9}"
            );
            record(&span);
            span.in_scope(|| tracing::info!("inside"));
        });
        let line = lines.lock().map(|l| l.clone()).unwrap_or_default();
        let event: serde_json::Value = serde_json::from_slice(&line).expect("one JSON line");
        event["span"].clone()
    }

    fn captured() -> (
        std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        impl for<'a> tracing_subscriber::fmt::MakeWriter<'a>,
    ) {
        #[derive(Clone)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::sync::lock(&self.0).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Sink(lines.clone());
        (lines, move || sink.clone())
    }

    #[test]
    fn span_fields_are_a_json_object_with_every_value_escaped() {
        let span = span_json(|_| {});
        assert_eq!(span["request_id"], "a\"quote\\and\ncontrol\u{1}");
        assert_eq!(span["path"], "/caf\u{e9}");
        assert_eq!(span["count"], 3);
        assert_eq!(span["delta"], -2);
        assert_eq!(span["ok"], true);
        assert_eq!(span["name"], "request");
        assert!(span.get("client_ip").is_none(), "an empty field is left out");
    }

    #[test]
    fn fields_recorded_later_join_the_object() {
        let span = span_json(|span| {
            span.record("client_ip", "192.0.2.1");
        });
        assert_eq!(span["client_ip"], "192.0.2.1");
        assert_eq!(span["count"], 3);
    }
}
