//! HTTPS served by the issuer itself (rustls): a real round trip with curl and a test
//! certificate, TLS 1.2 and 1.3 only, HSTS, and a renewed certificate picked up without a
//! restart.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A self-signed P-256 certificate for localhost and 127.0.0.1, written by openssl.
fn make_certificate(dir: &Path, name: &str) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
}

/// `curl` over HTTPS trusting only `ca`; (exit success, headers and body).
fn curl(ca: &Path, url: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// What `openssl s_client` makes of a handshake restricted to `version`.
fn handshake(port: u16, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), version])
        // Let the client offer old versions at all; the server must be the one refusing.
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)"),
        text,
    )
}

// curl and openssl block their thread; the server runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_serves_https_with_modern_tls_and_picks_up_a_renewed_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certificate(certs.path(), "first");
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let first_ca = certs.path().join("first-ca.pem");
    std::fs::copy(&cert, &first_ca).expect("copy");
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let server = common::start_with(&[("ISSUER_TLS_CERT", &cert_s), ("ISSUER_TLS_KEY", &key_s)]).await;
    assert!(server.base.starts_with("https://"));
    let port: u16 = server
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let local = |path: &str| format!("https://localhost:{port}{path}");

    let (ok, response) = curl(&first_ca, &local("/.well-known/openid-configuration"), &[]);
    assert!(ok, "{response}");
    assert!(
        response.starts_with("HTTP/2 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    let lower = response.to_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age="),
        "HSTS: {response}"
    );
    assert!(
        response.contains(&format!("\"issuer\":\"https://127.0.0.1:{port}\"")),
        "{response}"
    );
    let (ok, response) = curl(&first_ca, &local("/healthz"), &["--http1.1"]);
    assert!(ok && response.starts_with("HTTP/1.1 200"), "{response}");

    for modern in ["-tls1_2", "-tls1_3"] {
        let (ok, text) = handshake(port, modern);
        assert!(ok, "{modern} must be accepted: {text}");
    }
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = handshake(port, old);
        // The server's own refusal (it answers the hello with an alert), not a client
        // that would not offer the version.
        assert!(
            !ok && text.contains("Cipher is (NONE)") && !text.contains("has read 0 bytes"),
            "{old} must be refused: {text}"
        );
    }
    let (ok, response) = curl(&first_ca, &format!("http://127.0.0.1:{port}/healthz"), &[]);
    assert!(
        !ok || !response.contains("200 OK"),
        "no plain HTTP on the TLS port: {response}"
    );

    // Renewal: new files in place; new handshakes get the new certificate, no restart.
    make_certificate(certs.path(), "second");
    let renewed = common::eventually(Duration::from_secs(15), Duration::from_millis(250), || async {
        curl(&cert, &local("/healthz"), &[]).0.then_some(())
    })
    .await;
    assert!(
        renewed.is_some(),
        "the renewed certificate is served within the watch period"
    );
    let (ok, _) = curl(&first_ca, &local("/healthz"), &[]);
    assert!(!ok, "the old certificate is no longer served");
}

/// A client that finishes the TLS handshake and then sends nothing (or part of the HTTP/2
/// preface) is closed within the request timeout, as on plain HTTP.
#[tokio::test]
async fn a_client_silent_after_the_handshake_is_disconnected() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certificate(certs.path(), "silent");
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let server = common::start_with(&[
        ("ISSUER_TLS_CERT", &cert_s),
        ("ISSUER_TLS_KEY", &key_s),
        ("ISSUER_REQUEST_TIMEOUT", "1s"),
    ])
    .await;
    let address = server.base.trim_start_matches("https://").to_owned();
    for (what, sends) in [("silent", ""), ("half preface", "PRI * HTTP/2.0")] {
        // s_client completes the handshake, sends what it reads from stdin (kept open), and
        // exits when the server closes the connection.
        let mut client = tokio::process::Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &address])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let mut stdin = client.stdin.take().expect("stdin");
        tokio::io::AsyncWriteExt::write_all(&mut stdin, sends.as_bytes())
            .await
            .expect("write");
        let exited = tokio::time::timeout(Duration::from_secs(8), client.wait()).await;
        let _ = client.kill().await;
        assert!(
            exited.is_ok(),
            "{what}: the server closes the connection instead of waiting"
        );
        drop(stdin);
    }
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    make_certificate(one.path(), "one");
    make_certificate(two.path(), "two");
    let env = [
        (
            "ISSUER_TLS_CERT",
            one.path().join("cert.pem").display().to_string(),
        ),
        ("ISSUER_TLS_KEY", two.path().join("key.pem").display().to_string()),
    ];
    let (ok, _, err) = common::run_issuer(one.path(), &["serve"], &env);
    assert!(!ok);
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    // check-config trips on it too.
    let (ok, out, _) = common::run_issuer(one.path(), &["check-config"], &env);
    assert!(!ok);
    assert!(
        out.contains("check tls: FAILED") && out.contains("does not belong to the certificate"),
        "{out}"
    );
}

#[tokio::test]
async fn start_up_says_https_and_audits_the_certificate_it_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificate(dir.path(), "start");
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();
    let log = dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-issuer"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("ISSUER_BIND", "127.0.0.1:0"),
            ("ISSUER_URL", "https://127.0.0.1:8443"),
            ("ISSUER_TLS_CERT", cert.as_str()),
            ("ISSUER_TLS_KEY", key.as_str()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let logs = common::eventually(Duration::from_secs(30), Duration::from_millis(100), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("listening").then_some(text)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let logs = logs.expect("the server started");
    assert!(
        logs.contains("development mode (HTTPS)") && !logs.contains("plain HTTP"),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("tls_certificate_loaded") && l.contains(&cert)),
        "{logs}"
    );
    assert!(!logs.contains("Some("), "settings print as values: {logs}");
}
