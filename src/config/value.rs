//! How each kind of setting value is read from text and shown again (`check-config`, the
//! example file): one [`Value`] implementation per type.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::keys::Alg;
use crate::values::{format_duration, mask_url_password, parse_duration, Cidr, Rate};

/// A setting's type: read from its text, shown as that text again.
pub trait Value: Sized {
    fn parse(text: &str) -> Result<Self, String>;
    fn show(&self) -> String;
    /// The value of a setting that was not given and has no default text: only optional
    /// settings have one.
    fn absent() -> Option<Self> {
        None
    }
}

impl<T: Value> Value for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }
    fn show(&self) -> String {
        self.as_ref().map_or_else(String::new, T::show)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl Value for String {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.trim().to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl Value for PathBuf {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text.trim()))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// Numbers, addresses and booleans in their usual text forms.
macro_rules! from_str_value {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn parse(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| format!("cannot parse {text:?}"))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
from_str_value!(u32, usize, bool, SocketAddr);

impl Value for Duration {
    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text)
    }
    fn show(&self) -> String {
        format_duration(*self)
    }
}

impl Value for Rate {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for Alg {
    fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("must be RS256 or EdDSA, not {text:?}"))
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// A comma-separated list (a TOML array is joined with commas first).
impl Value for Vec<Cidr> {
    fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }
    fn show(&self) -> String {
        self.iter().map(Cidr::to_string).collect::<Vec<_>>().join(",")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

impl Value for Mode {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "development" => Ok(Mode::Development),
            "production" => Ok(Mode::Production),
            other => Err(format!("must be development or production, not {other:?}")),
        }
    }
    fn show(&self) -> String {
        match self {
            Mode::Development => "development",
            Mode::Production => "production",
        }
        .into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Value for LogFormat {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("must be pretty or json, not {other:?}")),
        }
    }
    fn show(&self) -> String {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
        .into()
    }
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

impl Value for KeySourceSpec {
    fn parse(spec: &str) -> Result<Self, String> {
        if let Some(dir) = spec.strip_prefix("file:").filter(|d| !d.is_empty()) {
            return Ok(KeySourceSpec::File(PathBuf::from(dir)));
        }
        if let Some(id) = spec.strip_prefix("aws-secretsmanager:").filter(|i| !i.is_empty()) {
            return Ok(KeySourceSpec::AwsSecretsManager(id.to_owned()));
        }
        Err(format!(
            "must be file:DIR or aws-secretsmanager:SECRET_ID, not {spec:?}"
        ))
    }
    fn show(&self) -> String {
        self.to_string()
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

impl Value for RateLimitStore {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "memory" => Ok(Self::Memory),
            "database" => Ok(Self::Database),
            url if url.starts_with("redis://") => Ok(Self::Redis(url.to_owned())),
            _ => Err("must be memory, database or a redis:// URL (rediss:// is not supported yet)".into()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Origins allowed to call from a browser (CORS): scheme and host, no path, no wildcard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

impl Value for Origins {
    fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| {
                let host = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"))
                    .unwrap_or("");
                let (authority, path) = host.split_once('/').unwrap_or((host, ""));
                if origin.contains('*') {
                    Err(format!("{origin:?}: wildcards are refused; list each origin"))
                } else if authority.is_empty() || authority.contains(' ') {
                    Err(format!(
                        "{origin:?} is not an origin like https://app.example.com"
                    ))
                } else if host.contains('/') {
                    let bare = origin.trim_end_matches(&format!("/{path}")[..]);
                    Err(format!("{origin:?}: an origin has no path; write {bare}"))
                } else {
                    Ok(origin.to_owned())
                }
            })
            .collect::<Result<_, _>>()
            .map(Origins)
    }
    fn show(&self) -> String {
        self.0.join(",")
    }
}
