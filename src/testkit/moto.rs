//! A local AWS Secrets Manager: the `moto` server (PyPI), which `scripts/test` installs into
//! `target/py-venv`, started on a free loopback port for one test and stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::keys::source::{AwsSource, KeySource};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, Region};

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> String {
    std::env::var("MOTO_SERVER")
        .unwrap_or_else(|_| format!("{}/target/py-venv/bin/moto_server", env!("CARGO_MANIFEST_DIR")))
}

impl Moto {
    pub async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port).await
    }

    /// Starts on `port` (again, after [`Moto::stop`]): an endpoint that comes back empty.
    pub async fn start_on(port: u16) -> Moto {
        let program = moto_server();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}); scripts/test installs moto[server] there")
            });
        // Built first, so that dropping it stops the process even if it never answers.
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/", moto.endpoint);
        let answered = super::eventually(Duration::from_secs(30), Duration::from_millis(100), || async {
            client.get(&url).send().await.ok().map(|_| ())
        })
        .await;
        assert!(answered.is_some(), "moto did not answer on {}", moto.endpoint);
        moto
    }

    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// The SDK configuration a real deployment would get from `AWS_*` settings.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    pub async fn source(&self, secret_id: &str) -> KeySource {
        KeySource::Aws(AwsSource::new(secret_id.to_owned(), &self.sdk_config().await))
    }

    /// The environment that points the `token-issuer` binary at this endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}
