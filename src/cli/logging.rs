//! Structured logs on stderr: human-readable or JSON. `RUST_LOG` overrides the levels.
//! Colours only on a terminal: a log file or a pipe gets plain text.

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
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
        LogFormat::Json => builder.fmt_fields(SpanFields).event_format(JsonLine).init(),
    }
}

/// One JSON object a line: timestamp, level, the event's fields, target, and the current
/// span (the request) as [`SpanFields`] recorded it, with its name; the list of enclosing
/// spans would repeat it. The subscriber's own JSON format parses a span's recorded fields
/// back into values for every event, and writes through an adapter that checks each piece is
/// UTF-8 again.
struct JsonLine;

impl<S> FormatEvent<S, SpanFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        write_members(&mut writer, false, event)?;
        writer.write_str(",\"target\":\"")?;
        Escaped(&mut writer).write_str(meta.target())?;
        writer.write_char('"')?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            if let Some(recorded) = span.extensions().get::<FormattedFields<SpanFields>>() {
                // `{"a":1}` and the name: `{"a":1,"name":"request"}`.
                let fields = recorded.fields.strip_suffix('}').unwrap_or("{");
                let separator = if fields == "{" { "" } else { "," };
                write!(writer, ",\"span\":{fields}{separator}\"name\":\"")?;
                Escaped(&mut writer).write_str(span.name())?;
                writer.write_str("\"}")?;
            }
        }
        writer.write_str("}\n")
    }
}

/// A span's fields as a JSON object, written as they come. The subscriber's own JSON field
/// formatter builds a map of `serde_json::Value`s first, for every request's span, though
/// only a request that logs ever reads them: 9 % of a JWKS answer's instructions.
struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        write_members(&mut writer, true, fields)?;
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
        write_members(&mut writer, first, fields)?;
        writer.write_char('}')
    }
}

/// `fields` as JSON object members (`"name":value`), after others unless `first`.
fn write_members(writer: &mut Writer<'_>, first: bool, fields: impl RecordFields) -> fmt::Result {
    let mut object = JsonObject {
        writer,
        first,
        result: Ok(()),
    };
    fields.record(&mut object);
    object.result
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

    /// A JSON string, whose contents `write` writes (escaped on the way).
    fn string(&mut self, field: &Field, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write(&mut Escaped(&mut *w))?;
            w.write_char('"')
        });
    }
}

impl Visit for JsonObject<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, |w| w.write_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, |w| write!(w, "{value:?}"));
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

    fn record_f64(&mut self, field: &Field, value: f64) {
        match value.is_finite() {
            true => self.entry(field, |w| write!(w, "{value}")),
            false => self.string(field, |w| write!(w, "{value}")),
        }
    }
}

/// Writes through, escaped for the inside of a JSON string (RFC 8259 §7).
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Byte by byte: what needs escaping is ASCII, so every match is a char boundary.
        let mut plain = 0;
        for (i, &b) in s.as_bytes().iter().enumerate() {
            let escaped = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b if b < b' ' => None,
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            match escaped {
                Some(escaped) => self.0.write_str(escaped)?,
                None => write!(self.0, "\\u{b:04x}")?,
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON lines `log` writes.
    fn lines_of(log: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
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
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SpanFields)
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(crate::sync::lock(&sink.0).clone()).expect("UTF-8");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line one JSON object"))
            .collect()
    }

    /// What the JSON log shows of a request's span, with more recorded in it by `record`.
    fn span_json(record: impl FnOnce(&tracing::Span)) -> serde_json::Value {
        let lines = lines_of(|| {
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
        lines[0]["span"].clone()
    }

    #[test]
    fn an_event_is_one_json_object_with_its_fields_at_the_top() {
        let lines = lines_of(|| {
            tracing::warn!(target: "audit", event = "token_issued", count = 2u64, ratio = 0.5,
                text = "say \"hi\"", "issued");
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}")
        };
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(
            timestamp.len() > 20 && timestamp.ends_with('Z'),
            "RFC 3339 in UTC: {timestamp}"
        );
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "issued");
        assert_eq!(line["event"], "token_issued");
        assert_eq!(line["count"], 2);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["text"], "say \"hi\"");
        assert_eq!(line["target"], "audit");
        assert!(line.get("span").is_none(), "outside a request: no span");
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
