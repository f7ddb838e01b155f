//! Settings: a TOML file and `ISSUER_*` environment variables (environment wins), checked
//! once at start. Every refusal is one line that names the setting.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::accounts::password::Argon2Settings;
use crate::keys::Alg;
use crate::values::{format_duration, mask_url_password, parse_duration, Cidr, Rate};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
    #[error("unknown setting {0} (see README.md, Configuration)")]
    Unknown(String),
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// Every setting and its development default, as README.md's configuration table lists them
/// (a test holds the two together). The TOML key is the name without `ISSUER_`, in lower case.
pub const SETTINGS: &[(&str, &str)] = &[
    ("ISSUER_ENV", "development"),
    ("ISSUER_BIND", "127.0.0.1:8080"),
    ("ISSUER_URL", "http://127.0.0.1:8080"),
    ("ISSUER_DATABASE_URL", "sqlite://data/token-issuer.db"),
    ("ISSUER_KEY_SOURCE", "file:keys"),
    ("ISSUER_SIGNING_ALG", "RS256"),
    ("ISSUER_AUDIENCE", "the issuer URL"),
    ("ISSUER_ACCESS_TOKEN_TTL", "15m"),
    ("ISSUER_REFRESH_TOKEN_TTL", "7d"),
    ("ISSUER_JWKS_MAX_AGE", "5m"),
    ("ISSUER_KEY_PUBLICATION_PERIOD", "24h"),
    ("ISSUER_KEY_RELOAD_INTERVAL", "60s"),
    ("ISSUER_CORS_ORIGINS", "none"),
    ("ISSUER_LOG_FORMAT", "pretty"),
    ("ISSUER_PASSWORD_MIN_LENGTH", "12"),
    ("ISSUER_ARGON2_MEMORY_KIB", "19456"),
    ("ISSUER_ARGON2_ITERATIONS", "2"),
    ("ISSUER_ARGON2_PARALLELISM", "1"),
    ("ISSUER_MAX_BODY_BYTES", "65536"),
    ("ISSUER_REQUEST_TIMEOUT", "10s"),
    ("ISSUER_TRUSTED_PROXIES", "none"),
    ("ISSUER_LOGIN_MAX_FAILURES", "5"),
    ("ISSUER_LOGIN_FAILURE_WINDOW", "15m"),
    ("ISSUER_REGISTER_RATE_LIMIT", "10/1h"),
    ("ISSUER_REFRESH_RATE_LIMIT", "60/1m"),
    ("ISSUER_TOKEN_RATE_LIMIT", "600/1m"),
    ("ISSUER_RATE_LIMIT_STORE", "database on PostgreSQL, else memory"),
    ("ISSUER_TLS_CERT", "none"),
    ("ISSUER_TLS_KEY", "none"),
    ("ISSUER_BEHIND_TLS_PROXY", "false"),
    ("ISSUER_ADMIN_BIND", "none"),
    ("ISSUER_MAX_CONCURRENT_REQUESTS", "1024"),
    ("ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT", "128"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceSpec {
    File(PathBuf),
    AwsSecretsManager(String),
}

impl fmt::Display for KeySourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(dir) => write!(f, "file:{}", dir.display()),
            Self::AwsSecretsManager(id) => write!(f, "aws-secretsmanager:{id}"),
        }
    }
}

/// Where rate-limit counters live; instances share budgets only through a shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitStore {
    Memory,
    Database,
    Redis(String),
}

impl fmt::Display for RateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Database => f.write_str("database"),
            Self::Redis(url) => f.write_str(&mask_url_password(url)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub bind: SocketAddr,
    pub url: String,
    pub database_url: String,
    pub key_source: KeySourceSpec,
    pub signing_alg: Alg,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub jwks_max_age: Duration,
    pub key_publication_period: Duration,
    pub key_reload_interval: Duration,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub password_min_length: usize,
    pub argon2: Argon2Settings,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Peers whose X-Forwarded-For / Forwarded headers name the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Failed logins per client IP per `login_failure_window` before 429.
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
    /// Registrations per client IP.
    pub register_rate_limit: Rate,
    /// Refreshes per client IP.
    pub refresh_rate_limit: Rate,
    /// Token requests per registered client.
    pub token_rate_limit: Rate,
    pub rate_limit_store: RateLimitStore,
    /// PEM certificate chain and private key: the issuer serves HTTPS itself.
    pub tls: Option<TlsFiles>,
    /// A proxy in front terminates TLS: production may then listen on plain HTTP.
    pub behind_tls_proxy: bool,
    /// Where `/metrics` is served instead of the main listener.
    pub admin_bind: Option<SocketAddr>,
    /// Requests served at once; more are answered 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Of those, how many one client address may have (`ratelimit::ip_subject`).
    pub max_concurrent_requests_per_client: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Settings {
    /// Reads the optional TOML file, then the process environment on top of it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut values = match file {
            Some(path) => read_toml(path)?,
            None => BTreeMap::new(),
        };
        values.extend(std::env::vars().filter(|(k, _)| k.starts_with("ISSUER_")));
        Self::from_values(values)
    }

    /// Builds settings from `ISSUER_*` names and their values; what is absent takes its default.
    pub fn from_values<K, V>(values: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut values: BTreeMap<String, String> =
            values.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        if let Some(unknown) = values
            .keys()
            .find(|k| !SETTINGS.iter().any(|(name, _)| name == k))
        {
            return Err(ConfigError::Unknown(unknown.clone()));
        }
        let mut take = |name: &'static str| values.remove(name);

        let mode = match take("ISSUER_ENV").as_deref() {
            None | Some("development") => Mode::Development,
            Some("production") => Mode::Production,
            Some(other) => {
                return Err(invalid(
                    "ISSUER_ENV",
                    format!("must be development or production, not {other:?}"),
                ))
            }
        };
        let production = mode == Mode::Production;
        let explicit = |name: &'static str, value: Option<String>| match value {
            None if production => Err(invalid(name, "must be set explicitly in production")),
            v => Ok(v),
        };

        let bind = parse_or("ISSUER_BIND", take("ISSUER_BIND"), "127.0.0.1:8080")?;
        let url = take("ISSUER_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let url = validate_issuer_url(&url, production)?;
        let database_url = explicit("ISSUER_DATABASE_URL", take("ISSUER_DATABASE_URL"))?
            .unwrap_or_else(|| "sqlite://data/token-issuer.db".into());
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            return Err(invalid(
                "ISSUER_DATABASE_URL",
                "must start with sqlite:// or postgres://",
            ));
        }
        let key_source =
            explicit("ISSUER_KEY_SOURCE", take("ISSUER_KEY_SOURCE"))?.unwrap_or_else(|| "file:keys".into());
        let key_source = parse_key_source(&key_source)?;
        let signing_alg = match take("ISSUER_SIGNING_ALG").as_deref() {
            None => Alg::Rs256,
            Some(s) => s
                .parse()
                .map_err(|_| invalid("ISSUER_SIGNING_ALG", format!("must be RS256 or EdDSA, not {s:?}")))?,
        };
        let audience = match take("ISSUER_AUDIENCE") {
            Some(a) if crate::uri::is_absolute_uri(&a) => a,
            Some(a) => {
                return Err(invalid(
                    "ISSUER_AUDIENCE",
                    format!("{a:?} is not {}", crate::uri::ABSOLUTE_URI_RULE),
                ))
            }
            None => url.clone(),
        };
        let duration = |name: &'static str, value: Option<String>, default: &str| {
            parse_duration(value.as_deref().unwrap_or(default)).map_err(|r| invalid(name, r))
        };
        let access_token_ttl = duration("ISSUER_ACCESS_TOKEN_TTL", take("ISSUER_ACCESS_TOKEN_TTL"), "15m")?;
        let refresh_token_ttl = duration("ISSUER_REFRESH_TOKEN_TTL", take("ISSUER_REFRESH_TOKEN_TTL"), "7d")?;
        let jwks_max_age = duration("ISSUER_JWKS_MAX_AGE", take("ISSUER_JWKS_MAX_AGE"), "5m")?;
        let key_publication_period = duration(
            "ISSUER_KEY_PUBLICATION_PERIOD",
            take("ISSUER_KEY_PUBLICATION_PERIOD"),
            "24h",
        )?;
        let key_reload_interval = duration(
            "ISSUER_KEY_RELOAD_INTERVAL",
            take("ISSUER_KEY_RELOAD_INTERVAL"),
            "60s",
        )?;
        let request_timeout = duration("ISSUER_REQUEST_TIMEOUT", take("ISSUER_REQUEST_TIMEOUT"), "10s")?;
        for (name, d) in [
            ("ISSUER_ACCESS_TOKEN_TTL", access_token_ttl),
            ("ISSUER_REFRESH_TOKEN_TTL", refresh_token_ttl),
            ("ISSUER_KEY_RELOAD_INTERVAL", key_reload_interval),
            ("ISSUER_REQUEST_TIMEOUT", request_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(name, "must be longer than zero"));
            }
        }
        if access_token_ttl > Duration::from_secs(24 * 3600) {
            return Err(invalid("ISSUER_ACCESS_TOKEN_TTL", "must be at most 24h"));
        }
        if refresh_token_ttl > Duration::from_secs(365 * 86_400) {
            return Err(invalid("ISSUER_REFRESH_TOKEN_TTL", "must be at most 365d"));
        }
        if refresh_token_ttl <= access_token_ttl {
            return Err(invalid(
                "ISSUER_REFRESH_TOKEN_TTL",
                "must be longer than ISSUER_ACCESS_TOKEN_TTL",
            ));
        }
        // A new key reaches verifiers after every instance has reloaded it and every cached
        // JWKS has expired; promoting it sooner could show a verifier an unknown kid.
        if key_publication_period < jwks_max_age + key_reload_interval {
            return Err(invalid(
                "ISSUER_KEY_PUBLICATION_PERIOD",
                "must not be shorter than ISSUER_JWKS_MAX_AGE + ISSUER_KEY_RELOAD_INTERVAL, \
                 or verifiers could meet an unknown kid",
            ));
        }

        let cors_origins = explicit("ISSUER_CORS_ORIGINS", take("ISSUER_CORS_ORIGINS"))?
            .map(|s| parse_cors_origins(&s))
            .transpose()?
            .unwrap_or_default();
        let log_format = match take("ISSUER_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "ISSUER_LOG_FORMAT",
                    format!("must be pretty or json, not {other:?}"),
                ))
            }
        };
        let password_min_length: usize = parse_or(
            "ISSUER_PASSWORD_MIN_LENGTH",
            take("ISSUER_PASSWORD_MIN_LENGTH"),
            "12",
        )?;
        if !(8..=64).contains(&password_min_length) {
            return Err(invalid("ISSUER_PASSWORD_MIN_LENGTH", "must be between 8 and 64"));
        }
        let argon2 = Argon2Settings {
            memory_kib: parse_or(
                "ISSUER_ARGON2_MEMORY_KIB",
                take("ISSUER_ARGON2_MEMORY_KIB"),
                "19456",
            )?,
            iterations: parse_or("ISSUER_ARGON2_ITERATIONS", take("ISSUER_ARGON2_ITERATIONS"), "2")?,
            parallelism: parse_or(
                "ISSUER_ARGON2_PARALLELISM",
                take("ISSUER_ARGON2_PARALLELISM"),
                "1",
            )?,
        };
        crate::accounts::password::argon2_params(argon2).map_err(|e| {
            invalid(
                "ISSUER_ARGON2_MEMORY_KIB",
                format!("invalid argon2 parameters: {e}"),
            )
        })?;
        let max_body_bytes: usize =
            parse_or("ISSUER_MAX_BODY_BYTES", take("ISSUER_MAX_BODY_BYTES"), "65536")?;
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(invalid(
                "ISSUER_MAX_BODY_BYTES",
                "must be between 1024 and 16777216",
            ));
        }

        let trusted_proxies = take("ISSUER_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| invalid("ISSUER_TRUSTED_PROXIES", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let login_max_failures: u32 = parse_or(
            "ISSUER_LOGIN_MAX_FAILURES",
            take("ISSUER_LOGIN_MAX_FAILURES"),
            "5",
        )?;
        if !(1..=1000).contains(&login_max_failures) {
            return Err(invalid("ISSUER_LOGIN_MAX_FAILURES", "must be between 1 and 1000"));
        }
        let login_failure_window = duration(
            "ISSUER_LOGIN_FAILURE_WINDOW",
            take("ISSUER_LOGIN_FAILURE_WINDOW"),
            "15m",
        )?;
        if login_failure_window.is_zero() {
            return Err(invalid("ISSUER_LOGIN_FAILURE_WINDOW", "must be longer than zero"));
        }
        let mut rate = |name: &'static str, default: &str| {
            take(name)
                .as_deref()
                .unwrap_or(default)
                .parse::<Rate>()
                .map_err(|e| invalid(name, e))
        };
        let register_rate_limit = rate("ISSUER_REGISTER_RATE_LIMIT", "10/1h")?;
        let refresh_rate_limit = rate("ISSUER_REFRESH_RATE_LIMIT", "60/1m")?;
        let token_rate_limit = rate("ISSUER_TOKEN_RATE_LIMIT", "600/1m")?;
        let rate_limit_store = match take("ISSUER_RATE_LIMIT_STORE").as_deref().map(str::trim) {
            None if database_url.starts_with("sqlite:") => RateLimitStore::Memory,
            None | Some("database") => RateLimitStore::Database,
            Some("memory") => RateLimitStore::Memory,
            Some(url) if url.starts_with("redis://") => RateLimitStore::Redis(url.to_owned()),
            Some(_) => {
                return Err(invalid(
                    "ISSUER_RATE_LIMIT_STORE",
                    "must be memory, database or a redis:// URL (rediss:// is not supported yet)",
                ))
            }
        };
        let tls = match (take("ISSUER_TLS_CERT"), take("ISSUER_TLS_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (Some(_), None) => return Err(invalid("ISSUER_TLS_KEY", "must be set with ISSUER_TLS_CERT")),
            (None, Some(_)) => return Err(invalid("ISSUER_TLS_CERT", "must be set with ISSUER_TLS_KEY")),
        };
        let behind_tls_proxy: bool = parse_or(
            "ISSUER_BEHIND_TLS_PROXY",
            take("ISSUER_BEHIND_TLS_PROXY"),
            "false",
        )?;
        if production && tls.is_none() && !behind_tls_proxy {
            return Err(invalid(
                "ISSUER_TLS_CERT",
                "production serves HTTPS: set ISSUER_TLS_CERT and ISSUER_TLS_KEY, or \
                 ISSUER_BEHIND_TLS_PROXY=true when a proxy in front terminates TLS",
            ));
        }
        let admin_bind = take("ISSUER_ADMIN_BIND")
            .map(|a| parse_or("ISSUER_ADMIN_BIND", Some(a), ""))
            .transpose()?;
        let max_concurrent_requests: usize = parse_or(
            "ISSUER_MAX_CONCURRENT_REQUESTS",
            take("ISSUER_MAX_CONCURRENT_REQUESTS"),
            "1024",
        )?;
        if max_concurrent_requests == 0 {
            return Err(invalid("ISSUER_MAX_CONCURRENT_REQUESTS", "must be at least 1"));
        }
        let max_concurrent_requests_per_client: usize = parse_or(
            "ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT",
            take("ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT"),
            "128",
        )?;
        if max_concurrent_requests_per_client == 0 {
            return Err(invalid(
                "ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT",
                "must be at least 1",
            ));
        }

        Ok(Self {
            mode,
            bind,
            url,
            database_url,
            key_source,
            signing_alg,
            audience,
            access_token_ttl,
            refresh_token_ttl,
            jwks_max_age,
            key_publication_period,
            key_reload_interval,
            cors_origins,
            log_format,
            password_min_length,
            argon2,
            max_body_bytes,
            request_timeout,
            trusted_proxies,
            login_max_failures,
            login_failure_window,
            register_rate_limit,
            refresh_rate_limit,
            token_rate_limit,
            rate_limit_store,
            tls,
            behind_tls_proxy,
            admin_bind,
            max_concurrent_requests,
            max_concurrent_requests_per_client,
        })
    }

    pub fn issuer_is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// `(name, value)` for every setting, with the database password masked.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let secs = |d: Duration| format_duration(d);
        vec![
            ("ISSUER_ENV", format!("{:?}", self.mode).to_lowercase()),
            ("ISSUER_BIND", self.bind.to_string()),
            ("ISSUER_URL", self.url.clone()),
            ("ISSUER_DATABASE_URL", mask_url_password(&self.database_url)),
            ("ISSUER_KEY_SOURCE", self.key_source.to_string()),
            ("ISSUER_SIGNING_ALG", self.signing_alg.to_string()),
            ("ISSUER_AUDIENCE", self.audience.clone()),
            ("ISSUER_ACCESS_TOKEN_TTL", secs(self.access_token_ttl)),
            ("ISSUER_REFRESH_TOKEN_TTL", secs(self.refresh_token_ttl)),
            ("ISSUER_JWKS_MAX_AGE", secs(self.jwks_max_age)),
            ("ISSUER_KEY_PUBLICATION_PERIOD", secs(self.key_publication_period)),
            ("ISSUER_KEY_RELOAD_INTERVAL", secs(self.key_reload_interval)),
            ("ISSUER_CORS_ORIGINS", self.cors_origins.join(",")),
            (
                "ISSUER_LOG_FORMAT",
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            ("ISSUER_PASSWORD_MIN_LENGTH", self.password_min_length.to_string()),
            ("ISSUER_ARGON2_MEMORY_KIB", self.argon2.memory_kib.to_string()),
            ("ISSUER_ARGON2_ITERATIONS", self.argon2.iterations.to_string()),
            ("ISSUER_ARGON2_PARALLELISM", self.argon2.parallelism.to_string()),
            ("ISSUER_MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("ISSUER_REQUEST_TIMEOUT", secs(self.request_timeout)),
            (
                "ISSUER_TRUSTED_PROXIES",
                self.trusted_proxies
                    .iter()
                    .map(Cidr::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("ISSUER_LOGIN_MAX_FAILURES", self.login_max_failures.to_string()),
            ("ISSUER_LOGIN_FAILURE_WINDOW", secs(self.login_failure_window)),
            ("ISSUER_REGISTER_RATE_LIMIT", self.register_rate_limit.to_string()),
            ("ISSUER_REFRESH_RATE_LIMIT", self.refresh_rate_limit.to_string()),
            ("ISSUER_TOKEN_RATE_LIMIT", self.token_rate_limit.to_string()),
            ("ISSUER_RATE_LIMIT_STORE", self.rate_limit_store.to_string()),
            (
                "ISSUER_TLS_CERT",
                self.tls
                    .as_ref()
                    .map_or_else(String::new, |t| t.cert.display().to_string()),
            ),
            (
                "ISSUER_TLS_KEY",
                self.tls
                    .as_ref()
                    .map_or_else(String::new, |t| t.key.display().to_string()),
            ),
            ("ISSUER_BEHIND_TLS_PROXY", self.behind_tls_proxy.to_string()),
            (
                "ISSUER_ADMIN_BIND",
                self.admin_bind.map_or_else(String::new, |a| a.to_string()),
            ),
            (
                "ISSUER_MAX_CONCURRENT_REQUESTS",
                self.max_concurrent_requests.to_string(),
            ),
            (
                "ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT",
                self.max_concurrent_requests_per_client.to_string(),
            ),
        ]
    }
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.message().to_owned()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => return Err(file_err(format!("{key}: unsupported value {other}"))),
            };
            Ok((format!("ISSUER_{}", key.to_uppercase()), value))
        })
        .collect()
}

fn parse_or<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<T, ConfigError> {
    let raw = value.as_deref().unwrap_or(default);
    raw.trim()
        .parse()
        .map_err(|_| invalid(name, format!("cannot parse {raw:?}")))
}

fn validate_issuer_url(url: &str, production: bool) -> Result<String, ConfigError> {
    let url = url.trim().to_owned();
    if url.ends_with('/') {
        // `iss` must equal the configured URL exactly; refuse rather than silently change it.
        return Err(invalid("ISSUER_URL", format!("must not end with a slash: {url}")));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("ISSUER_URL", "must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(invalid(
            "ISSUER_URL",
            "must be a URL with a host and no query or fragment",
        ));
    }
    if production && !url.starts_with("https://") {
        return Err(invalid(
            "ISSUER_URL",
            format!("must be https:// in production, not {url}"),
        ));
    }
    Ok(url)
}

fn parse_key_source(spec: &str) -> Result<KeySourceSpec, ConfigError> {
    if let Some(dir) = spec.strip_prefix("file:") {
        if !dir.is_empty() {
            return Ok(KeySourceSpec::File(PathBuf::from(dir)));
        }
    } else if let Some(id) = spec.strip_prefix("aws-secretsmanager:") {
        if !id.is_empty() {
            return Ok(KeySourceSpec::AwsSecretsManager(id.to_owned()));
        }
    }
    Err(invalid(
        "ISSUER_KEY_SOURCE",
        format!("must be file:DIR or aws-secretsmanager:SECRET_ID, not {spec:?}"),
    ))
}

fn parse_cors_origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            if host.is_empty() || host.contains(['/', '*', ' ']) {
                Err(invalid(
                    "ISSUER_CORS_ORIGINS",
                    format!(
                        "{origin:?} is not an origin like https://app.example.com (wildcards are refused)"
                    ),
                ))
            } else {
                Ok(origin.to_owned())
            }
        })
        .collect()
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
        assert_eq!(s.audience, s.url);
        assert_eq!(s.database_url, "sqlite://data/token-issuer.db");
        assert_eq!(s.key_source, KeySourceSpec::File("keys".into()));
        assert_eq!(s.signing_alg, Alg::Rs256);
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.refresh_token_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.jwks_max_age, Duration::from_secs(300));
        assert_eq!(s.key_publication_period, Duration::from_secs(86_400));
        assert!(s.cors_origins.is_empty());
        assert_eq!(s.password_min_length, 12);
        assert_eq!(
            s.argon2,
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
    fn audiences_are_any_absolute_uri() {
        for audience in [
            "urn:reports:api",
            "spiffe://example.org/api",
            "https://api.example.com",
        ] {
            let s = Settings::from_values(vec![("ISSUER_AUDIENCE", audience)]).expect("accepted");
            assert_eq!(s.audience, audience);
        }
    }

    #[test]
    fn readme_documents_every_setting_with_its_default() {
        let readme = include_str!("../README.md");
        for (name, default) in SETTINGS {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("README.md has no row for {name}"));
            assert!(
                row.contains(default),
                "README.md gives another default for {name}: {row}"
            );
        }
        let effective: Vec<&str> = Settings::from_values(Vec::<(String, String)>::new())
            .expect("defaults")
            .effective()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let documented: Vec<&str> = SETTINGS.iter().map(|(name, _)| *name).collect();
        assert_eq!(effective, documented, "check-config shows every setting");
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
        let values = read_toml(&path).expect("valid toml");
        let s = Settings::from_values(values).expect("valid");
        assert_eq!(s.access_token_ttl, Duration::from_secs(300));
        assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn rate_limit_counters_are_shared_through_the_database_unless_it_is_sqlite() {
        let store = |values: Vec<(&'static str, &'static str)>| {
            Settings::from_values(values).expect("valid").rate_limit_store
        };
        assert_eq!(store(vec![]), RateLimitStore::Memory);
        assert_eq!(store(prod()), RateLimitStore::Database);
        let mut redis = prod();
        redis.push(("ISSUER_RATE_LIMIT_STORE", "redis://:hunter2@cache:6379/0"));
        let redis = Settings::from_values(redis).expect("valid");
        assert!(matches!(redis.rate_limit_store, RateLimitStore::Redis(_)));
        assert_eq!(redis.rate_limit_store.to_string(), "redis://:***@cache:6379/0");
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
