//! Structured logs on stderr (`log_writer`): human-readable or JSON. `RUST_LOG` overrides the
//! levels.
//! Colours only on a terminal: a log file or a pipe gets plain text.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use super::log_writer::{self, Flush, LogWriter};
use crate::config::LogFormat;
use crate::http::request_scope;

/// Keep the [`Flush`] until the process ends: dropped, it writes out the lines still waiting.
#[must_use = "dropping it ends the batched writing of log lines"]
pub fn init(format: LogFormat) -> Flush {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, flush) = LogWriter::new(std::io::stderr(), log_writer::DELAY);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Pretty => builder.event_format(PrettyLine::default()).init(),
        LogFormat::Json => builder.event_format(JsonLine).init(),
    }
    flush
}

/// The subscriber's own human-readable line, with the request being handled (if any) shown
/// as a span would be: `… INFO request{request_id=… client_ip=… method=… path=…}: target: …`.
struct PrettyLine {
    /// Writes what follows the request: other spans, the target and the fields.
    rest: Format<Full, ()>,
}

impl Default for PrettyLine {
    fn default() -> Self {
        Self {
            rest: tracing_subscriber::fmt::format().without_time().with_level(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PrettyLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ansi = writer.has_ansi_escapes();
        let (dim, bold, reset) = match ansi {
            true => ("\x1b[2m", "\x1b[1m", "\x1b[0m"),
            false => ("", "", ""),
        };
        writer.write_str(dim)?;
        write_now(&mut writer)?;
        writer.write_str(reset)?;
        let level = *event.metadata().level();
        let colour = match level {
            Level::ERROR => "\x1b[31m",
            Level::WARN => "\x1b[33m",
            Level::INFO => "\x1b[32m",
            Level::DEBUG => "\x1b[34m",
            Level::TRACE => "\x1b[35m",
        };
        match ansi {
            true => write!(writer, " {colour}{level:>5}{reset} ")?,
            false => write!(writer, " {level:>5} ")?,
        }
        request_scope::with_current(|scope| {
            write!(writer, "{bold}request{{{reset}")?;
            let mut first = true;
            scope.fields(|name, value| {
                let separator = if std::mem::take(&mut first) { "" } else { " " };
                write!(writer, "{separator}{name}={value}")
            })?;
            write!(writer, "{bold}}}{reset}: ")
        })
        .unwrap_or(Ok(()))?;
        self.rest.format_event(ctx, writer, event)
    }
}

/// One JSON object a line: timestamp, level, the event's fields, target, and the request
/// being handled, if any, as `"span":{"request_id":…,"client_ip":…,"method":…,"path":…,
/// "name":"request"}`. The subscriber's own JSON format keeps every span's fields as a map of
/// values for every request, though only a request that logs ever reads them, and writes
/// through an adapter that checks each piece is UTF-8 again.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_now(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        write_members(&mut writer, event)?;
        writer.write_str(",\"target\":\"")?;
        Escaped(&mut writer).write_str(meta.target())?;
        writer.write_char('"')?;
        request_scope::with_current(|scope| {
            writer.write_str(",\"span\":{")?;
            scope.fields(|name, value| {
                writer.write_char('"')?;
                writer.write_str(name)?;
                writer.write_str("\":\"")?;
                Escaped(&mut writer).write_str(value)?;
                writer.write_str("\",")
            })?;
            writer.write_str("\"name\":\"request\"}")
        })
        .unwrap_or(Ok(()))?;
        writer.write_str("}\n")
    }
}

/// The second a thread last wrote, as text: `2026-12-07T03:58:00`.
#[derive(Default)]
struct Second {
    at: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<Second> = RefCell::default();
}

/// The time now in tracing-subscriber's format, `2026-12-07T03:58:00.123456Z` (UTC, to the
/// microsecond). Each thread formats the date and time once a second and reuses it: the
/// whole timestamp was a quarter of an audit line's cost.
fn write_now(writer: &mut impl fmt::Write) -> fmt::Result {
    // A clock before 1970 is shown as 1970.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    SECOND.with_borrow_mut(|second| write_time(writer, now, second))
}

fn write_time(writer: &mut impl fmt::Write, since_epoch: Duration, second: &mut Second) -> fmt::Result {
    let secs = since_epoch.as_secs();
    if second.at != secs || second.text.is_empty() {
        let t = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        second.text.clear();
        write!(
            second.text,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        second.at = secs;
    }
    writer.write_str(&second.text)?;
    // Digit by digit rather than `{:06}` through `fmt`: every log line has one.
    let mut fraction = *b".000000Z";
    let mut micros = since_epoch.subsec_micros();
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&fraction).map_err(|_| fmt::Error)?)
}

/// `fields` as JSON object members (`,"name":value`), after others.
fn write_members(writer: &mut Writer<'_>, fields: impl RecordFields) -> fmt::Result {
    let mut object = JsonObject {
        writer,
        result: Ok(()),
    };
    fields.record(&mut object);
    object.result
}

struct JsonObject<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonObject<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.writer.write_str(",\"")?;
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
        crate::json::write_escaped(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request_scope::RequestScope;

    /// What `log` writes in `format`.
    fn text_of<F>(format: F, log: impl FnOnce()) -> String
    where
        F: FormatEvent<tracing_subscriber::Registry, tracing_subscriber::fmt::format::DefaultFields>
            + Send
            + Sync
            + 'static,
    {
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
            .with_ansi(false)
            .event_format(format)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = crate::sync::lock(&sink.0).clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    /// The JSON lines `log` writes.
    fn lines_of(log: impl FnOnce()) -> Vec<serde_json::Value> {
        text_of(JsonLine, log)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line one JSON object"))
            .collect()
    }

    fn request(id: &'static str, client_ip: Option<&str>) -> RequestScope {
        RequestScope {
            id: axum::http::HeaderValue::from_static(id),
            client_ip: client_ip.map(|ip| ip.parse().expect("ip")),
            method: axum::http::Method::POST,
            uri: axum::http::Uri::from_static("/oauth2/caf%C3%A9?secret=s3cr3t"),
        }
    }

    #[test]
    fn timestamps_are_utc_to_the_microsecond_and_each_second_is_formatted_afresh() {
        let mut second = Second::default();
        let mut at = |secs: u64, micros: u32| {
            let mut text = String::new();
            write_time(&mut text, Duration::new(secs, micros * 1_000), &mut second).expect("written");
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_765_079_999, 999_999), "2025-12-07T03:59:59.999999Z");
        assert_eq!(at(1_765_079_999, 120_000), "2025-12-07T03:59:59.120000Z");
        assert_eq!(at(1_765_080_000, 1), "2025-12-07T04:00:00.000001Z");
        assert_eq!(
            at(1_765_079_999, 5),
            "2025-12-07T03:59:59.000005Z",
            "a clock stepped back"
        );
    }

    #[test]
    fn the_timestamp_now_is_the_one_tracing_subscriber_would_write() {
        use tracing_subscriber::fmt::format::Writer;
        use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime as Theirs};
        // Either side of a second's turn, the two may differ in the second: one more try.
        let same_second = (0..2).any(|_| {
            let mut ours = String::new();
            write_now(&mut ours).expect("written");
            let mut theirs = String::new();
            Theirs
                .format_time(&mut Writer::new(&mut theirs))
                .expect("written");
            ours.len() == theirs.len() && ours[..19] == theirs[..19]
        });
        assert!(same_second);
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
    fn the_request_being_handled_is_every_line_s_span_escaped_without_its_query() {
        let lines = lines_of(|| {
            request_scope::sync_scope(
                request("a\"quote\\and", Some("192.0.2.1")),
                || tracing::info!(target: "audit", event = "token_issued", "inside"),
            );
            request_scope::sync_scope(request("r2", None), || tracing::info!("no address"));
        });
        let [inside, no_address] = lines.as_slice() else {
            panic!("two lines: {lines:?}")
        };
        assert_eq!(inside["event"], "token_issued");
        assert_eq!(
            inside["span"],
            serde_json::json!({"request_id": "a\"quote\\and", "client_ip": "192.0.2.1",
                "method": "POST", "path": "/oauth2/caf%C3%A9", "name": "request"})
        );
        assert_eq!(
            no_address["span"],
            serde_json::json!({"request_id": "r2", "method": "POST", "path": "/oauth2/caf%C3%A9",
                "name": "request"}),
            "an unknown address is left out"
        );
    }

    #[test]
    fn the_readable_format_shows_the_request_as_a_span_before_the_target() {
        let text = text_of(PrettyLine::default(), || {
            request_scope::sync_scope(
                request("r1", Some("192.0.2.1")),
                || tracing::warn!(target: "audit", event = "token_issued", "inside"),
            );
            tracing::info!(target: "audit", "outside");
        });
        let lines: Vec<&str> = text.lines().collect();
        let [inside, outside] = lines.as_slice() else {
            panic!("two lines: {text}")
        };
        assert!(
            inside.contains(
                "  WARN request{request_id=r1 client_ip=192.0.2.1 method=POST path=/oauth2/caf%C3%A9}: audit: inside event=\"token_issued\""
            ),
            "{inside}"
        );
        assert!(
            inside.split(' ').next().is_some_and(|t| t.ends_with('Z')),
            "a timestamp first: {inside}"
        );
        assert!(outside.contains("  INFO audit: outside"), "{outside}");
        assert!(!text.contains("s3cr3t"), "no query string");
        assert!(!text.contains('\x1b'), "no colours off a terminal");
    }
}
