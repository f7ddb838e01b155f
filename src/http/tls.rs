//! HTTPS with rustls: TLS 1.2 and 1.3 only (rustls speaks nothing older), with the
//! certificate chain and key read from PEM files. The pair is read again when either file
//! changes (checked every few seconds) or on SIGHUP; new handshakes get the new
//! certificate, open connections go on, and a bad new pair keeps the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change.
const WATCH_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Config(String),
}

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<ArcSwap<CertifiedKey>>,
    /// Modification times and sizes of the two files as last loaded.
    loaded: Mutex<Option<[(SystemTime, u64); 2]>>,
    acceptor: TlsAcceptor,
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Current(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let stamp = stamps(cert, key)?;
        let certified = read_pair(&provider, cert, key)?;
        let current = Arc::new(ArcSwap::from_pointee(certified));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Current(current.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current,
            loaded: Mutex::new(Some(stamp)),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the pair again if a file changed since it was loaded (`force`: regardless).
    /// True when a new certificate is in use.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let stamp = stamps(&self.cert, &self.key)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if !force && *loaded == Some(stamp) {
            return Ok(false);
        }
        let certified = read_pair(&self.provider, &self.cert, &self.key)?;
        self.current.store(Arc::new(certified));
        *loaded = Some(stamp);
        Ok(true)
    }

    /// Re-reads the files on `force`, logging the outcome.
    pub fn reload_logged(&self, force: bool) {
        match self.reload(force) {
            Ok(true) => {
                tracing::info!(target: "audit", event = "tls_certificate_loaded", cert = %self.cert.display())
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays in use")
            }
        }
    }

    /// Watches the files for changes for as long as the process runs.
    pub fn spawn_watch(self: &Arc<Self>) {
        let tls = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(WATCH_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(tls) = tls.upgrade() else { return };
                tokio::task::spawn_blocking(move || tls.reload_logged(false))
                    .await
                    .ok();
            }
        });
    }
}

fn stamps(cert: &Path, key: &Path) -> Result<[(SystemTime, u64); 2], TlsError> {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
        Ok((meta.modified().map_err(|e| file_error(path, e))?, meta.len()))
    };
    Ok([stamp(cert)?, stamp(key)?])
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The chain and its private key, checked to belong together. Errors never quote the files.
fn read_pair(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no PEM certificate in the file"));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| file_error(key, "no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file"))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| file_error(key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| file_error(key, "the private key does not belong to the certificate"))?;
    Ok(certified)
}
