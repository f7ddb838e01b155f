//! Helpers that run the `token-issuer` binary itself (only an integration test knows where
//! Cargo built it), beside the in-process test kit of the library.

pub use token_issuer::testkit::*;

use std::time::Duration;

/// Runs the `token-issuer` binary in `dir` with only `PATH` and `env` set; returns
/// (success, stdout, stderr).
pub fn run_issuer<K, V>(dir: &std::path::Path, args: &[&str], env: &[(K, V)]) -> (bool, String, String)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_token-issuer"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run token-issuer");
    // A command that should have ended but serves on fails the test instead of hanging it.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("token-issuer output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("token-issuer {args:?} did not finish within 120 s");
        }
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `token-issuer serve` binary on a free loopback port, logging JSON to `DIR/serve.log`;
/// killed when dropped.
pub struct ServeProcess {
    pub base: String,
    pub log: std::path::PathBuf,
    child: std::process::Child,
}

impl ServeProcess {
    /// Starts the binary in `dir` with only `PATH` and `env` (plus the bind address, the
    /// issuer URL and JSON logs) and waits until it answers `/healthz`.
    pub async fn start<K: AsRef<str>, V: AsRef<str>>(dir: &std::path::Path, env: &[(K, V)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("serve.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_token-issuer"))
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ISSUER_BIND", format!("127.0.0.1:{port}"))
            .env("ISSUER_URL", &base)
            .env("ISSUER_LOG_FORMAT", "json")
            .envs(env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("serve");
        let process = Self { base, log, child };
        let client = reqwest::Client::new();
        let healthz = process.url("/healthz");
        let up = eventually(Duration::from_secs(30), Duration::from_millis(100), || async {
            let resp = client.get(&healthz).send().await.ok()?;
            resp.status().is_success().then_some(())
        })
        .await;
        assert!(up.is_some(), "the binary did not start: {}", process.logs());
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
