//! Settings: a TOML file and `ISSUER_*` environment variables (environment wins), checked
//! once at start. Every refusal is one line that names the setting.
//!
//! Each setting is declared once, in [`settings!`] below: its name, default, meaning and type
//! (whose [`Value`] implementation reads and shows it). Parsing, `check-config`'s output, the
//! example file (`token-issuer example-config`) and the README table check all come from
//! that declaration. Rules between settings live in [`Settings::check`].

mod value;

pub use value::{KeySourceSpec, LogFormat, Mode, Origins, RateLimitStore, Value};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::accounts::password::Argon2Settings;
use crate::keys::Alg;
use crate::values::{mask_url_password, Cidr, Rate};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
    /// An `ISSUER_*` name, or a TOML key, that is no setting: the message says where.
    #[error("{message}")]
    Unknown { name: String, message: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// Every problem found, one a line: nobody should need a run per mistake.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// The settings (or TOML keys, or the file) that are wrong.
    pub fn settings(&self) -> Vec<String> {
        match self {
            Self::Invalid { setting, .. } => vec![(*setting).to_owned()],
            Self::Unknown { name, .. } => vec![name.clone()],
            Self::File { path, .. } => vec![path.display().to_string()],
            Self::Several(all) => all.iter().flat_map(Self::settings).collect(),
        }
    }
}

/// One error for what was found: itself when alone.
fn refused(mut problems: Vec<ConfigError>) -> Result<(), ConfigError> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(ConfigError::Several(problems)),
    }
}

/// The declared name closest to `given` (an edit or two away), for a did-you-mean.
fn closest<'a>(given: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|name| (edit_distance(given, name), name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

fn unknown_setting(name: &str) -> ConfigError {
    let hint = closest(name, SETTINGS.iter().map(|s| s.name))
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    ConfigError::Unknown {
        name: name.to_owned(),
        message: format!("unknown setting {name}{hint} (see README.md, Configuration)"),
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// What a setting that is not given takes.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// This value, in its text form.
    Value(&'static str),
    /// This value in development; production refuses to start without an explicit one.
    Development(&'static str),
    /// Nothing (an optional setting), or what another setting gives, described in words.
    Unset(&'static str),
}

/// One setting as documented.
#[derive(Debug)]
pub struct Setting {
    /// The environment variable; the TOML key is this without `ISSUER_`, in lower case.
    pub name: &'static str,
    pub default: Fallback,
    /// What it does, as README.md's table says it.
    pub meaning: &'static str,
}

impl Setting {
    /// The TOML key.
    pub fn key(&self) -> String {
        self.name.trim_start_matches("ISSUER_").to_lowercase()
    }

    /// The default as README.md and the example file write it.
    pub fn documented_default(&self) -> String {
        match self.default {
            Fallback::Value("") | Fallback::Development("") => "none".into(),
            Fallback::Value(v) | Fallback::Development(v) => format!("`{v}`"),
            Fallback::Unset(words) => words.into(),
        }
    }
}

/// Reads one setting: the given text, else its default.
fn read<T: Value>(
    setting: &Setting,
    given: Option<String>,
    production: bool,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let text = match (given, setting.default) {
        (Some(text), _) => text,
        (None, Fallback::Development(_)) if production => {
            return Err(invalid(setting.name, "must be set explicitly in production"))
        }
        (None, Fallback::Value(text) | Fallback::Development(text)) => text.to_owned(),
        (None, Fallback::Unset(_)) => return T::absent().ok_or_else(|| invalid(setting.name, "must be set")),
    };
    parse(&text).map_err(|reason| invalid(setting.name, reason))
}

/// Declares every setting once: `field: Type = NAME, default, "meaning"` (optionally
/// `parse = f` when a field's text has rules of its own), and makes of it the `Settings`
/// struct, the [`SETTINGS`] table, parsing, and the values `check-config` shows.
macro_rules! settings {
    ($($(#[$attr:meta])* $field:ident: $ty:ty = $name:literal, $default:expr, $meaning:literal
        $(, parse = $parse:path)?;)*) => {
        /// Every setting, as given or defaulted and then checked ([`Settings::check`]).
        #[derive(Debug, Clone)]
        pub struct Settings {
            $($(#[$attr])* pub $field: $ty,)*
        }

        /// Every setting, in the order README.md and the example file list them.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            name: $name,
            default: $default,
            meaning: $meaning,
        }),*];

        impl Settings {
            /// Reads each setting from `values`, which must hold no other names.
            /// Reads each setting from `values`; `earlier` holds what the file already had wrong.
            fn read(
                mut values: BTreeMap<String, String>,
                earlier: Vec<ConfigError>,
            ) -> Result<Self, ConfigError> {
                let mut problems = earlier;
                problems.extend(
                    values
                        .keys()
                        .filter(|k| !SETTINGS.iter().any(|s| s.name == *k))
                        .map(|k| unknown_setting(k)),
                );
                let production = values.get("ISSUER_ENV").is_some_and(|e| e.trim() == "production");
                // A setting that is refused counts as its default, so that the rules between
                // settings are checked too and every problem is reported in one run.
                let settings = Self {$($field: {
                    let setting = SETTINGS
                        .iter()
                        .find(|s| s.name == $name)
                        .ok_or_else(|| invalid($name, "not in the table"))?;
                    let parse = parser!($ty $(, $parse)?);
                    match read::<$ty>(setting, values.remove($name), production, parse) {
                        Ok(value) => value,
                        Err(problem) => {
                            problems.push(problem);
                            read::<$ty>(setting, None, false, parse)?
                        }
                    }
                },)*};
                let refused_settings: Vec<&str> = problems
                    .iter()
                    .filter_map(|p| match p {
                        ConfigError::Invalid { setting, .. } => Some(*setting),
                        _ => None,
                    })
                    .collect();
                match settings.check(&refused_settings) {
                    Err(ConfigError::Several(more)) => problems.extend(more),
                    Err(problem) => problems.push(problem),
                    Ok(()) => {}
                }
                refused(problems)?;
                Ok(settings)
            }

            /// `(name, value)` of every setting as read, before what one derives from another.
            fn shown(&self) -> Vec<(&'static str, String)> {
                vec![$(($name, Value::show(&self.$field))),*]
            }
        }
    };
}

/// A field's parser: its own rules when it names them, else its type's.
macro_rules! parser {
    ($ty:ty) => {
        <$ty as Value>::parse
    };
    ($ty:ty, $parse:path) => {
        $parse
    };
}

settings! {
    mode: Mode = "ISSUER_ENV", Fallback::Value("development"),
        "`development` or `production`";
    bind: SocketAddr = "ISSUER_BIND", Fallback::Value("127.0.0.1:8080"),
        "listen address";
    url: String = "ISSUER_URL", Fallback::Value("http://127.0.0.1:8080"),
        "issuer identifier and public base URL (`iss`)", parse = issuer_url;
    database_url: String = "ISSUER_DATABASE_URL", Fallback::Development("sqlite://data/token-issuer.db"),
        "`sqlite://…` or `postgres://…`", parse = database_url;
    key_source: KeySourceSpec = "ISSUER_KEY_SOURCE", Fallback::Development("file:keys"),
        "`file:DIR` (reads `DIR/keyset.json`) or `aws-secretsmanager:SECRET_ID`";
    signing_alg: Alg = "ISSUER_SIGNING_ALG", Fallback::Value("RS256"),
        "`RS256` or `EdDSA`";
    /// `aud` of user access tokens when set; see [`Settings::audience`].
    audience: Option<String> = "ISSUER_AUDIENCE", Fallback::Unset("the issuer URL"),
        "`aud` of user access tokens: any absolute URI", parse = audience;
    access_token_ttl: Duration = "ISSUER_ACCESS_TOKEN_TTL", Fallback::Value("15m"),
        "access-token lifetime (at most 24h)";
    refresh_token_ttl: Duration = "ISSUER_REFRESH_TOKEN_TTL", Fallback::Value("7d"),
        "refresh-token lifetime (at most 365d), renewed by each rotation";
    jwks_max_age: Duration = "ISSUER_JWKS_MAX_AGE", Fallback::Value("5m"),
        "JWKS `Cache-Control` max-age";
    key_publication_period: Duration = "ISSUER_KEY_PUBLICATION_PERIOD", Fallback::Value("24h"),
        "how long a pending key is published before `keys rotate` may promote it (≥ JWKS max-age + reload interval)";
    key_reload_interval: Duration = "ISSUER_KEY_RELOAD_INTERVAL", Fallback::Value("60s"),
        "how often running instances re-read the key source (also on `SIGHUP`)";
    cors_origins: Origins = "ISSUER_CORS_ORIGINS", Fallback::Development(""),
        "comma-separated allowed origins; no wildcards";
    log_format: LogFormat = "ISSUER_LOG_FORMAT", Fallback::Value("pretty"),
        "`pretty` or `json` (`RUST_LOG` sets levels; a request is logged when it fails, is refused or takes over a second, every request at `RUST_LOG=info,token_issuer::http=debug`)";
    password_min_length: usize = "ISSUER_PASSWORD_MIN_LENGTH", Fallback::Value("12"),
        "minimum password length in characters (8–64)";
    argon2_memory_kib: u32 = "ISSUER_ARGON2_MEMORY_KIB", Fallback::Value("19456"),
        "argon2id memory cost (OWASP)";
    argon2_iterations: u32 = "ISSUER_ARGON2_ITERATIONS", Fallback::Value("2"),
        "argon2id time cost";
    argon2_parallelism: u32 = "ISSUER_ARGON2_PARALLELISM", Fallback::Value("1"),
        "argon2id lanes";
    max_body_bytes: usize = "ISSUER_MAX_BODY_BYTES", Fallback::Value("65536"),
        "largest request body accepted (413 above)";
    request_timeout: Duration = "ISSUER_REQUEST_TIMEOUT", Fallback::Value("10s"),
        "time limit for one request (JSON 503 `timeout` after), and for a client to send its headers, its HTTP/2 preface or its TLS handshake";
    /// Peers whose X-Forwarded-For / Forwarded headers name the client.
    trusted_proxies: Vec<Cidr> = "ISSUER_TRUSTED_PROXIES", Fallback::Value(""),
        "comma-separated CIDRs of proxies whose `X-Forwarded-For` / `Forwarded` name the client IP";
    /// Failed logins per client IP per `login_failure_window` before 429.
    login_max_failures: u32 = "ISSUER_LOGIN_MAX_FAILURES", Fallback::Value("5"),
        "failed logins per client IP per window before 429; also the per-account back-off threshold";
    login_failure_window: Duration = "ISSUER_LOGIN_FAILURE_WINDOW", Fallback::Value("15m"),
        "the window of `ISSUER_LOGIN_MAX_FAILURES`";
    /// Registrations per client IP.
    register_rate_limit: Rate = "ISSUER_REGISTER_RATE_LIMIT", Fallback::Value("10/1h"),
        "registrations per client IP, written `N/DURATION`";
    /// Refreshes per client IP.
    refresh_rate_limit: Rate = "ISSUER_REFRESH_RATE_LIMIT", Fallback::Value("60/1m"),
        "refreshes per client IP (both refresh endpoints)";
    /// Token requests per registered client.
    token_rate_limit: Rate = "ISSUER_TOKEN_RATE_LIMIT", Fallback::Value("600/1m"),
        "token-endpoint requests per registered client";
    /// When set; see [`Settings::rate_limit_store`].
    rate_limit_store: Option<RateLimitStore> = "ISSUER_RATE_LIMIT_STORE",
        Fallback::Unset("database on PostgreSQL, else memory"),
        "where rate-limit counters live: `memory`, `database`, or `redis://…` — shared stores make N instances share one budget";
    tls_cert: Option<PathBuf> = "ISSUER_TLS_CERT", Fallback::Unset("none"),
        "PEM certificate chain: serve HTTPS directly (with `ISSUER_TLS_KEY`); re-read on change and on `SIGHUP`";
    tls_key: Option<PathBuf> = "ISSUER_TLS_KEY", Fallback::Unset("none"),
        "PEM private key of `ISSUER_TLS_CERT`";
    /// A proxy in front terminates TLS: production may then listen on plain HTTP.
    behind_tls_proxy: bool = "ISSUER_BEHIND_TLS_PROXY", Fallback::Value("false"),
        "`true` lets production listen on plain HTTP because a proxy in front terminates TLS";
    /// Where `/metrics` is served instead of the main listener.
    admin_bind: Option<SocketAddr> = "ISSUER_ADMIN_BIND", Fallback::Unset("none"),
        "separate plain-HTTP listener for `/metrics`, `/healthz`, `/readyz`; `/metrics` then leaves the main listener";
    /// Requests served at once; more are answered 503 at once instead of queueing.
    max_concurrent_requests: usize = "ISSUER_MAX_CONCURRENT_REQUESTS", Fallback::Value("1024"),
        "requests served at once; beyond it `503 overloaded` with `Retry-After: 1`, never a queue";
    /// Of those, how many one client address may have (`ratelimit::ip_network`).
    max_concurrent_requests_per_client: usize = "ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT", Fallback::Value("128"),
        "of those, how many one client address (an IPv6 client: its /64) may have in flight (a value at or above `ISSUER_MAX_CONCURRENT_REQUESTS` turns it off); beyond it the same `503 overloaded`. Behind a proxy, set `ISSUER_TRUSTED_PROXIES`, or every client counts as the proxy (a warning at start says so)";
    /// The async runtime's worker threads; unset, tokio's one per core.
    worker_threads: Option<usize> = "ISSUER_WORKER_THREADS", Fallback::Unset("one per core"),
        "threads that serve requests, 1–1024 (argon2 and RSA signatures run on threads of their own); unset, tokio's choice: `TOKIO_WORKER_THREADS`, else one per core. On a small machine shared with other busy processes, fewer trade throughput for tail latency (BENCHMARKS.md)";
    /// How long a stopping instance goes on serving while it reports not ready.
    shutdown_delay: Duration = "ISSUER_SHUTDOWN_DELAY", Fallback::Value("0s"),
        "on `SIGTERM`, how long to go on serving while `/readyz` answers 503 `draining`, so that a load balancer stops routing here before the listener closes (above its health-check interval × fall count; on Kubernetes the `preStop` pause does this)";
    /// How long a browser stays logged in at the hosted page.
    login_session_ttl: Duration = "ISSUER_LOGIN_SESSION_TTL", Fallback::Value("12h"),
        "how long a login at the hosted page lasts: until then the browser's next authorization needs no password (unless `prompt=login` or `max_age`)";
    login_product_name: String = "ISSUER_LOGIN_PRODUCT_NAME", Fallback::Value("token-issuer"),
        "the name the hosted login and consent pages show (1–64 characters)", parse = product_name;
    login_logo_url: Option<String> = "ISSUER_LOGIN_LOGO_URL", Fallback::Unset("none"),
        "an `https://` logo for the hosted pages (their CSP allows its origin only)", parse = logo_url;
    login_accent_color: String = "ISSUER_LOGIN_ACCENT_COLOR", Fallback::Value("#1f5fbf"),
        "the hosted pages' button and link colour, `#RRGGBB` (keep white text readable on it)", parse = color;
}

/// More runtime workers than this are a typo, not a machine: each is a thread started at once.
const MAX_WORKER_THREADS: usize = 1024;

fn product_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    match (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        true => Ok(name.to_owned()),
        false => Err("must be 1–64 characters without control characters".into()),
    }
}

fn logo_url(text: &str) -> Result<Option<String>, String> {
    let ok = crate::uri::is_absolute_uri(text)
        && text.starts_with("https://")
        && !text.contains(['\'', '"', ';', ' ']);
    match ok {
        true => Ok(Some(text.to_owned())),
        false => Err(format!("{text:?} must be an https:// URL")),
    }
}

fn color(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix('#').unwrap_or_default();
    match hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(text.to_ascii_lowercase()),
        false => Err(format!("{text:?} must be a colour written #RRGGBB")),
    }
}

/// `iss` must equal the configured URL exactly: a trailing slash is refused, not dropped.
fn issuer_url(text: &str) -> Result<String, String> {
    let url = text.trim().to_owned();
    if url.ends_with('/') {
        return Err(format!("must not end with a slash: {url}"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err("must be a URL with a host and no query or fragment".into());
    }
    Ok(url)
}

fn database_url(text: &str) -> Result<String, String> {
    match ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        true => Ok(text.to_owned()),
        false => Err("must start with sqlite:// or postgres://".into()),
    }
}

fn audience(text: &str) -> Result<Option<String>, String> {
    match crate::uri::is_absolute_uri(text) {
        true => Ok(Some(text.to_owned())),
        false => Err(format!("{text:?} is not {}", crate::uri::ABSOLUTE_URI_RULE)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Settings {
    /// Reads the optional TOML file, then the process environment on top of it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let (mut values, unknown_keys) = match file {
            Some(path) => read_toml(path)?,
            None => (BTreeMap::new(), Vec::new()),
        };
        values.extend(std::env::vars().filter(|(k, _)| k.starts_with("ISSUER_")));
        Self::read(values, unknown_keys)
    }

    /// Builds settings from `ISSUER_*` names and their values; what is absent takes its default.
    pub fn from_values<K, V>(values: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let values = values.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self::read(values, Vec::new())
    }

    /// The rules that relate settings, or bound one beyond what its type allows: every one
    /// that is broken is reported — except a rule over a setting in `refused`, which holds a
    /// stand-in default, not what the operator wrote.
    fn check(&self, refused_settings: &[&str]) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        // `inputs` are the settings the rule reads; the first is the one blamed.
        let mut rule = |broken: bool, inputs: &[&'static str], reason: String| {
            if broken && !inputs.iter().any(|i| refused_settings.contains(i)) {
                problems.push(invalid(inputs[0], reason));
            }
        };
        let production = self.mode == Mode::Production;
        rule(
            production && !self.url.starts_with("https://"),
            &["ISSUER_URL", "ISSUER_ENV"],
            format!("must be https:// in production, not {}", self.url),
        );
        for (name, d) in [
            ("ISSUER_ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("ISSUER_REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("ISSUER_KEY_RELOAD_INTERVAL", self.key_reload_interval),
            ("ISSUER_REQUEST_TIMEOUT", self.request_timeout),
            ("ISSUER_LOGIN_FAILURE_WINDOW", self.login_failure_window),
            ("ISSUER_LOGIN_SESSION_TTL", self.login_session_ttl),
        ] {
            rule(d.is_zero(), &[name], "must be longer than zero".into());
        }
        rule(
            self.access_token_ttl > Duration::from_secs(24 * 3600),
            &["ISSUER_ACCESS_TOKEN_TTL"],
            "must be at most 24h".into(),
        );
        rule(
            self.refresh_token_ttl > Duration::from_secs(365 * 86_400),
            &["ISSUER_REFRESH_TOKEN_TTL"],
            "must be at most 365d".into(),
        );
        rule(
            self.refresh_token_ttl <= self.access_token_ttl,
            &["ISSUER_REFRESH_TOKEN_TTL", "ISSUER_ACCESS_TOKEN_TTL"],
            "must be longer than ISSUER_ACCESS_TOKEN_TTL".into(),
        );
        // A new key reaches verifiers after every instance has reloaded it and every cached
        // JWKS has expired; promoting it sooner could show a verifier an unknown kid.
        rule(
            self.key_publication_period < self.jwks_max_age + self.key_reload_interval,
            &[
                "ISSUER_KEY_PUBLICATION_PERIOD",
                "ISSUER_JWKS_MAX_AGE",
                "ISSUER_KEY_RELOAD_INTERVAL",
            ],
            "must not be shorter than ISSUER_JWKS_MAX_AGE + ISSUER_KEY_RELOAD_INTERVAL, \
             or verifiers could meet an unknown kid"
                .into(),
        );
        rule(
            !(8..=64).contains(&self.password_min_length),
            &["ISSUER_PASSWORD_MIN_LENGTH"],
            "must be between 8 and 64".into(),
        );
        if let Err(e) = crate::accounts::password::argon2_params(self.argon2()) {
            // Blame the parameter argon2 refused.
            let (memory, iterations, parallelism) = (
                "ISSUER_ARGON2_MEMORY_KIB",
                "ISSUER_ARGON2_ITERATIONS",
                "ISSUER_ARGON2_PARALLELISM",
            );
            let blamed = match e {
                argon2::Error::TimeTooSmall => [iterations, memory, parallelism],
                argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => {
                    [parallelism, memory, iterations]
                }
                _ => [memory, iterations, parallelism],
            };
            rule(true, &blamed, format!("invalid argon2 parameters: {e}"));
        }
        rule(
            !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes),
            &["ISSUER_MAX_BODY_BYTES"],
            "must be between 1024 and 16777216".into(),
        );
        rule(
            !(1..=1000).contains(&self.login_max_failures),
            &["ISSUER_LOGIN_MAX_FAILURES"],
            "must be between 1 and 1000".into(),
        );
        rule(
            self.tls_cert.is_some() && self.tls_key.is_none(),
            &["ISSUER_TLS_KEY", "ISSUER_TLS_CERT"],
            "must be set with ISSUER_TLS_CERT".into(),
        );
        rule(
            self.tls_cert.is_none() && self.tls_key.is_some(),
            &["ISSUER_TLS_CERT", "ISSUER_TLS_KEY"],
            "must be set with ISSUER_TLS_KEY".into(),
        );
        rule(
            production && self.tls_cert.is_none() && !self.behind_tls_proxy,
            &[
                "ISSUER_TLS_CERT",
                "ISSUER_ENV",
                "ISSUER_TLS_KEY",
                "ISSUER_BEHIND_TLS_PROXY",
            ],
            "production serves HTTPS: set ISSUER_TLS_CERT and ISSUER_TLS_KEY, or \
             ISSUER_BEHIND_TLS_PROXY=true when a proxy in front terminates TLS"
                .into(),
        );
        rule(
            self.max_concurrent_requests == 0,
            &["ISSUER_MAX_CONCURRENT_REQUESTS"],
            "must be at least 1".into(),
        );
        rule(
            self.max_concurrent_requests_per_client == 0,
            &["ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT"],
            "must be at least 1".into(),
        );
        rule(
            self.worker_threads
                .is_some_and(|n| !(1..=MAX_WORKER_THREADS).contains(&n)),
            &["ISSUER_WORKER_THREADS"],
            format!("must be 1 to {MAX_WORKER_THREADS}"),
        );
        refused(problems)
    }

    pub fn issuer_is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// `aud` of user access tokens: the issuer URL unless set.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.url)
    }

    /// The shared store on PostgreSQL, process memory on SQLite, unless set.
    pub fn rate_limit_store(&self) -> RateLimitStore {
        match &self.rate_limit_store {
            Some(store) => store.clone(),
            None if self.database_url.starts_with("sqlite:") => RateLimitStore::Memory,
            None => RateLimitStore::Database,
        }
    }

    /// The certificate and key, when the issuer serves HTTPS itself.
    pub fn tls(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    pub fn argon2(&self) -> Argon2Settings {
        Argon2Settings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// `(name, value)` for every setting as it takes effect, with passwords in URLs masked.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        self.shown()
            .into_iter()
            .map(|(name, value)| match name {
                "ISSUER_DATABASE_URL" => (name, mask_url_password(&value)),
                "ISSUER_AUDIENCE" => (name, self.audience().to_owned()),
                "ISSUER_RATE_LIMIT_STORE" => (name, self.rate_limit_store().to_string()),
                _ => (name, value),
            })
            .collect()
    }
}

/// A commented TOML file with every setting: its meaning, default and environment variable.
/// Settings without a default value are commented out.
pub fn example_toml() -> String {
    let mut out = String::from(
        "# token-issuer configuration (`token-issuer example-config` writes this file).\n\
         # Every key may be overridden by its environment variable, which wins over this file.\n\
         # Durations: 90s, 15m, 24h, 7d. Lists: a TOML array, or commas in the environment.\n\
         # Check a file with:  token-issuer --config FILE check-config\n",
    );
    for setting in SETTINGS {
        let meaning = setting.meaning.replace('`', "");
        let default = setting.documented_default().replace('`', "");
        let production = match setting.default {
            Fallback::Development(_) => " in development; production needs it set",
            _ => "",
        };
        out.push_str(&format!(
            "\n# {}: {meaning}. Default: {default}{production}.\n",
            setting.name
        ));
        let line = match setting.default {
            Fallback::Value(v) | Fallback::Development(v) => toml_line(&setting.key(), v),
            Fallback::Unset(_) => format!("# {} = \"\"", setting.key()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `key = value` as TOML writes the default: numbers and booleans bare, lists as arrays.
fn toml_line(key: &str, value: &str) -> String {
    let list = matches!(key, "cors_origins" | "trusted_proxies");
    if list {
        let items: Vec<String> = value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| format!("{s:?}"))
            .collect();
        return format!("{key} = [{}]", items.join(", "));
    }
    let bare = value.parse::<u64>().is_ok() || value == "true" || value == "false";
    match bare {
        true => format!("{key} = {value}"),
        false => format!("{key} = {value:?}"),
    }
}

/// The settings of a TOML file, and a problem for each key that is no setting.
fn read_toml(path: &Path) -> Result<(BTreeMap<String, String>, Vec<ConfigError>), ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    toml_settings(&text, &path.display().to_string()).map_err(file_err)
}

/// A TOML document's keys as `ISSUER_*` names (lists joined by commas); a key that names no
/// setting is a problem that names it as written, with the file and a did-you-mean.
fn toml_settings(text: &str, file: &str) -> Result<(BTreeMap<String, String>, Vec<ConfigError>), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    let (mut values, mut unknown) = (BTreeMap::new(), Vec::new());
    for (key, value) in table {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => return Err(format!("{key}: unsupported value {other}")),
        };
        let name = format!("ISSUER_{}", key.to_uppercase());
        if SETTINGS.iter().any(|s| s.name == name) {
            values.insert(name, value);
            continue;
        }
        // A key written with the prefix of its environment variable is one prefix away.
        let upper = key.to_uppercase();
        let bare = upper.strip_prefix("ISSUER_").unwrap_or(&upper);
        let hint = closest(bare, SETTINGS.iter().map(|s| &s.name["ISSUER_".len()..]))
            .map(|k| format!(" (did you mean {:?}?)", k.to_lowercase()))
            .unwrap_or_default();
        unknown.push(ConfigError::Unknown {
            message: format!("unknown key {key:?} in {file}{hint}"),
            name: key,
        });
    }
    Ok((values, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ISSUER_ENV", "production"),
            ("ISSUER_URL", "https://auth.example.com"),
            ("ISSUER_DATABASE_URL", "postgres://issuer:pw@db/issuer"),
            ("ISSUER_KEY_SOURCE", "aws-secretsmanager:issuer/keys"),
            ("ISSUER_CORS_ORIGINS", "https://app.example.com"),
            ("ISSUER_BEHIND_TLS_PROXY", "true"),
        ]
    }

    fn refusal(values: Vec<(&'static str, &'static str)>) -> String {
        Settings::from_values(values)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn development_defaults_match_the_contract() {
        let s = Settings::from_values(Vec::<(String, String)>::new()).expect("defaults are valid");
        assert_eq!(s.mode, Mode::Development);
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.url, "http://127.0.0.1:8080");
        assert_eq!(s.audience(), s.url);
        assert_eq!(s.database_url, "sqlite://data/token-issuer.db");
        assert_eq!(s.key_source, KeySourceSpec::File("keys".into()));
        assert_eq!(s.signing_alg, Alg::Rs256);
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.refresh_token_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.jwks_max_age, Duration::from_secs(300));
        assert_eq!(s.key_publication_period, Duration::from_secs(86_400));
        assert!(s.cors_origins.0.is_empty());
        assert_eq!(s.password_min_length, 12);
        assert_eq!(
            s.argon2(),
            Argon2Settings {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn production_with_everything_explicit_is_accepted() {
        let s = Settings::from_values(prod()).expect("valid production settings");
        assert_eq!(s.mode, Mode::Production);
        assert!(s.issuer_is_https());
    }

    #[test]
    fn production_refusals_name_the_setting() {
        let mut http = prod();
        http[1] = ("ISSUER_URL", "http://auth.example.com");
        assert!(refusal(http).starts_with("ISSUER_URL:"));
        for missing in ["ISSUER_DATABASE_URL", "ISSUER_KEY_SOURCE", "ISSUER_CORS_ORIGINS"] {
            let values = prod().into_iter().filter(|(k, _)| *k != missing).collect();
            let msg = refusal(values);
            assert!(msg.starts_with(missing), "{msg}");
            assert!(!msg.contains('\n'));
        }
        // Plain HTTP only behind a TLS-terminating proxy; with certificate files it is HTTPS.
        let plain = prod()
            .into_iter()
            .filter(|(k, _)| *k != "ISSUER_BEHIND_TLS_PROXY")
            .collect();
        assert!(refusal(plain).starts_with("ISSUER_TLS_CERT:"));
        let mut tls: Vec<_> = prod()
            .into_iter()
            .filter(|(k, _)| *k != "ISSUER_BEHIND_TLS_PROXY")
            .collect();
        tls.extend([
            ("ISSUER_TLS_CERT", "/etc/tls/chain.pem"),
            ("ISSUER_TLS_KEY", "/etc/tls/key.pem"),
        ]);
        assert!(Settings::from_values(tls).is_ok());
        assert!(refusal(vec![("ISSUER_TLS_CERT", "chain.pem")]).starts_with("ISSUER_TLS_KEY:"));
    }

    #[test]
    fn bad_values_are_refused_with_one_line() {
        assert!(refusal(vec![("ISSUER_ACCESS_TOKEN_TTL", "soon")]).starts_with("ISSUER_ACCESS_TOKEN_TTL:"));
        assert!(refusal(vec![("ISSUER_SIGNING_ALG", "HS256")]).starts_with("ISSUER_SIGNING_ALG:"));
        assert!(refusal(vec![("ISSUER_KEY_SOURCE", "vault:x")]).starts_with("ISSUER_KEY_SOURCE:"));
        assert!(refusal(vec![("ISSUER_CORS_ORIGINS", "*")]).starts_with("ISSUER_CORS_ORIGINS:"));
        assert!(refusal(vec![
            ("ISSUER_JWKS_MAX_AGE", "2h"),
            ("ISSUER_KEY_PUBLICATION_PERIOD", "1h")
        ])
        .starts_with("ISSUER_KEY_PUBLICATION_PERIOD:"));
        assert!(refusal(vec![
            ("ISSUER_JWKS_MAX_AGE", "5m"),
            ("ISSUER_KEY_RELOAD_INTERVAL", "60s"),
            ("ISSUER_KEY_PUBLICATION_PERIOD", "330s")
        ])
        .contains("ISSUER_KEY_RELOAD_INTERVAL"));
        assert!(refusal(vec![("ISSUER_PASSWORD_MIN_LENGTH", "4")]).starts_with("ISSUER_PASSWORD_MIN_LENGTH:"));
        assert!(refusal(vec![("ISSUER_TYPO", "1")]).contains("ISSUER_TYPO"));
        assert!(refusal(vec![("ISSUER_URL", "http://127.0.0.1:8080/")]).starts_with("ISSUER_URL:"));
        assert!(refusal(vec![("ISSUER_REFRESH_TOKEN_TTL", "400d")]).starts_with("ISSUER_REFRESH_TOKEN_TTL:"));
        for audience in ["", "reports-api", "/api", "urn:reports#x", "urn:a b"] {
            let refused = refusal(vec![("ISSUER_AUDIENCE", audience)]);
            assert!(
                refused.starts_with("ISSUER_AUDIENCE:") && refused.contains("absolute URI"),
                "{refused}"
            );
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let refused = refusal(vec![
            ("ISSUER_ENV", "production"),
            ("ISSUER_URL", "http://auth.example.com"),
            ("ISSUER_ARGON2_ITERATIONS", "0"),
            ("ISSUER_BNID", "127.0.0.1:1"),
        ]);
        let lines: Vec<&str> = refused.lines().collect();
        for expected in [
            "unknown setting ISSUER_BNID (did you mean ISSUER_BIND?)",
            "ISSUER_URL: must be https:// in production",
            "ISSUER_DATABASE_URL: must be set explicitly in production",
            "ISSUER_KEY_SOURCE: must be set explicitly in production",
            "ISSUER_CORS_ORIGINS: must be set explicitly in production",
            "ISSUER_TLS_CERT: production serves HTTPS",
            "ISSUER_ARGON2_ITERATIONS: invalid argon2 parameters",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(expected)),
                "{expected:?} missing from:\n{refused}"
            );
        }
        assert_eq!(lines.len(), 7, "{refused}");
    }

    #[test]
    fn a_refused_setting_is_not_blamed_again_through_its_stand_in_default() {
        let mut values = prod();
        values.retain(|(k, _)| *k != "ISSUER_BEHIND_TLS_PROXY");
        values.push(("ISSUER_BEHIND_TLS_PROXY", "True"));
        values[1] = ("ISSUER_URL", "https://auth.example.com/");
        values.push(("ISSUER_ACCESS_TOKEN_TTL", "soon"));
        let refused = refusal(values);
        let lines: Vec<&str> = refused.lines().collect();
        assert_eq!(lines.len(), 3, "{refused}");
        for setting in [
            "ISSUER_BEHIND_TLS_PROXY:",
            "ISSUER_URL: must not end with a slash",
            "ISSUER_ACCESS_TOKEN_TTL:",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(setting)),
                "{setting} in {refused}"
            );
        }
    }

    #[test]
    fn refusals_blame_the_setting_that_is_wrong() {
        assert!(refusal(vec![("ISSUER_ARGON2_ITERATIONS", "0")]).starts_with("ISSUER_ARGON2_ITERATIONS:"));
        assert!(refusal(vec![("ISSUER_ARGON2_PARALLELISM", "0")]).starts_with("ISSUER_ARGON2_PARALLELISM:"));
        assert!(refusal(vec![("ISSUER_ARGON2_MEMORY_KIB", "1")]).starts_with("ISSUER_ARGON2_MEMORY_KIB:"));
        let slash = refusal(vec![("ISSUER_CORS_ORIGINS", "https://a.example/")]);
        assert!(
            slash.contains("an origin has no path; write https://a.example") && !slash.contains("wildcard"),
            "{slash}"
        );
        let path = refusal(vec![("ISSUER_CORS_ORIGINS", "https://a.example/app")]);
        assert!(path.contains("write https://a.example"), "{path}");
        assert!(refusal(vec![("ISSUER_CORS_ORIGINS", "https://*.example")]).contains("wildcards are refused"));
        assert!(refusal(vec![("ISSUER_TYPO", "1")]).contains("unknown setting ISSUER_TYPO (see"));
    }

    #[test]
    fn an_unknown_toml_key_is_named_as_written_with_a_suggestion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.toml");
        std::fs::write(
            &path,
            "bnid = \"127.0.0.1:1\"\nzzzzzz = 1\nISSUER_Log_Format = \"json\"\naccess_token_ttl = \"soon\"\n",
        )
        .expect("write");
        let refused = Settings::load(Some(&path)).expect_err("refused").to_string();
        let file = path.display();
        for expected in [
            format!("unknown key \"bnid\" in {file} (did you mean \"bind\"?)"),
            format!("unknown key \"zzzzzz\" in {file}"),
            // As written, and the prefix pointed out.
            format!("unknown key \"ISSUER_Log_Format\" in {file} (did you mean \"log_format\"?)"),
            // The file's other problems come in the same run.
            "ISSUER_ACCESS_TOKEN_TTL: ".to_owned(),
        ] {
            assert!(refused.contains(&expected), "{expected:?} in {refused}");
        }
        assert!(!refused.contains("ISSUER_BNID"), "{refused}");
    }

    #[test]
    fn audiences_are_any_absolute_uri() {
        for audience in [
            "urn:reports:api",
            "spiffe://example.org/api",
            "https://api.example.com",
        ] {
            let s = Settings::from_values(vec![("ISSUER_AUDIENCE", audience)]).expect("accepted");
            assert_eq!(s.audience(), audience);
        }
    }

    #[test]
    fn readme_lists_every_setting_as_declared() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `ISSUER_")).collect();
        let declared: Vec<String> = SETTINGS
            .iter()
            .map(|s| format!("| `{}` | {} | {} |", s.name, s.documented_default(), s.meaning))
            .collect();
        assert_eq!(
            rows, declared,
            "README.md's table is the declarations of config/mod.rs"
        );
        let effective: Vec<&str> = Settings::from_values(Vec::<(String, String)>::new())
            .expect("defaults")
            .effective()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(effective, names, "check-config shows every setting");
    }

    #[test]
    fn the_example_file_is_the_declarations_and_its_defaults_are_the_defaults() {
        let committed = include_str!("../../token-issuer.example.toml");
        assert_eq!(
            committed,
            example_toml(),
            "token-issuer.example.toml is stale: run `token-issuer example-config > token-issuer.example.toml`"
        );
        let (values, unknown) = toml_settings(committed, "example").expect("the example is valid TOML");
        assert!(unknown.is_empty(), "{unknown:?}");
        let from_example = Settings::from_values(values).expect("the example is valid");
        let defaults = Settings::from_values(Vec::<(String, String)>::new()).expect("defaults");
        assert_eq!(from_example.effective(), defaults.effective());
    }

    #[test]
    fn toml_file_is_read_and_environment_names_map_to_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.toml");
        std::fs::write(
            &path,
            "access_token_ttl = \"5m\"\ncors_origins = [\"https://a.example\", \"https://b.example\"]\n",
        )
        .expect("write");
        let (values, _) = read_toml(&path).expect("valid toml");
        let s = Settings::from_values(values).expect("valid");
        assert_eq!(s.access_token_ttl, Duration::from_secs(300));
        assert_eq!(s.cors_origins.0, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn rate_limit_counters_are_shared_through_the_database_unless_it_is_sqlite() {
        let store = |values: Vec<(&'static str, &'static str)>| {
            Settings::from_values(values).expect("valid").rate_limit_store()
        };
        assert_eq!(store(vec![]), RateLimitStore::Memory);
        assert_eq!(store(prod()), RateLimitStore::Database);
        let mut redis = prod();
        redis.push(("ISSUER_RATE_LIMIT_STORE", "redis://:hunter2@cache:6379/0"));
        let redis = Settings::from_values(redis).expect("valid");
        assert!(matches!(redis.rate_limit_store(), RateLimitStore::Redis(_)));
        assert_eq!(redis.rate_limit_store().to_string(), "redis://:***@cache:6379/0");
        assert!(refusal(vec![("ISSUER_RATE_LIMIT_STORE", "memcached://x")])
            .starts_with("ISSUER_RATE_LIMIT_STORE:"));
        assert!(refusal(vec![("ISSUER_TOKEN_RATE_LIMIT", "lots")]).starts_with("ISSUER_TOKEN_RATE_LIMIT:"));
    }

    #[test]
    fn check_config_masks_the_database_password() {
        let s = Settings::from_values(prod()).expect("valid");
        let shown = s
            .effective()
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!shown.contains("pw@"));
    }
}
