//! `aws-secretsmanager:SECRET_ID`: the secret's `AWSCURRENT` value is the keyset document.
//!
//! Secrets Manager has no conditional put, so a write is a compare-and-swap in two steps: the
//! new value goes in as a version that is not yet current, then `AWSCURRENT` is moved to it
//! *from the version that was read*. If another writer moved it in between, the move fails
//! and nothing the other writer stored is lost.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;

const CURRENT: &str = "AWSCURRENT";
/// Marks the version a writer has stored but not yet made current.
const STAGED: &str = "TOKEN_ISSUER_STAGED";

#[derive(Debug, Clone)]
pub struct AwsSource {
    client: Client,
    secret_id: String,
}

/// Why a write did not happen.
pub enum WriteError {
    /// Another writer changed the secret since it was read.
    Conflict(String),
    Failed(String),
}

impl AwsSource {
    /// Region, endpoint (`AWS_ENDPOINT_URL`) and credentials from the standard AWS settings.
    pub async fn from_environment(secret_id: String) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(15))
            .build();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        Self::new(secret_id, &config)
    }

    pub fn new(secret_id: String, config: &SdkConfig) -> Self {
        Self {
            client: Client::new(config),
            secret_id,
        }
    }

    pub fn name(&self) -> String {
        format!("aws-secretsmanager:{}", self.secret_id)
    }

    /// The current value and its version id; `None` if the secret does not exist.
    pub async fn read(&self) -> Result<Option<(String, String)>, String> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(CURRENT)
            .send()
            .await;
        let mut output = match result {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(DisplayErrorContext(e).to_string()),
        };
        let version = output.version_id().unwrap_or_default().to_owned();
        // Taken, not copied: the caller wipes the one copy of the private keys.
        match output.secret_string.take() {
            Some(value) => Ok(Some((value, version))),
            None => Err("the secret holds a binary value; it must hold the keyset JSON as a string".into()),
        }
    }

    /// Stores `value` as the new current version, provided the current version is still
    /// `read_version` (`None`: the secret had no current value).
    pub async fn write(&self, value: &str, read_version: Option<&str>) -> Result<(), WriteError> {
        // The same token on a retried request makes the same version, never a second one.
        let token = uuid::Uuid::new_v4().to_string();
        match read_version {
            Some(read_version) => {
                let staged = self.stage(value, &token).await?;
                self.make_current(&staged, Some(read_version)).await
            }
            None => self.create(value, &token).await,
        }
    }

    /// Stores `value` as a version that is not current yet; returns its id.
    async fn stage(&self, value: &str, token: &str) -> Result<String, WriteError> {
        let staged = self
            .client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value)
            .client_request_token(token)
            .version_stages(STAGED)
            .send()
            .await
            .map_err(|e| WriteError::Failed(DisplayErrorContext(e).to_string()))?;
        Ok(staged.version_id().unwrap_or(token).to_owned())
    }

    /// Moves `AWSCURRENT` to `version` from `from` — or, with `from` = `None`, only if no
    /// version is current. Secrets Manager refuses the move when `AWSCURRENT` is elsewhere.
    async fn make_current(&self, version: &str, from: Option<&str>) -> Result<(), WriteError> {
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(CURRENT)
            .move_to_version_id(version)
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await;
        let Err(e) = moved else { return Ok(()) };
        let failure = DisplayErrorContext(e).to_string();
        // Tell a lost race from a retried success or any other failure by what is current now.
        match self.current_version().await {
            Ok(Some(current)) if current == version => Ok(()),
            Ok(current) if current.as_deref() != from => Err(WriteError::Conflict(format!(
                "version {} was read, {} is current now",
                from.unwrap_or("(none)"),
                current.as_deref().unwrap_or("(none)")
            ))),
            _ => Err(WriteError::Failed(failure)),
        }
    }

    /// The version `AWSCURRENT` is on, from the secret's metadata: no value is fetched.
    async fn current_version(&self) -> Result<Option<String>, String> {
        let described = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(described.version_ids_to_stages().and_then(|versions| {
            versions
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                .map(|(version, _)| version.clone())
        }))
    }

    /// Creates the secret; if it exists without a current value (created empty, e.g. by
    /// infrastructure code), gives it its first current version instead.
    async fn create(&self, value: &str, token: &str) -> Result<(), WriteError> {
        let result = self
            .client
            .create_secret()
            .name(&self.secret_id)
            .secret_string(value)
            .client_request_token(token)
            .description("token-issuer signing keys (the keyset document); managed by `token-issuer keys`")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                let staged = self.stage(value, token).await?;
                self.make_current(&staged, None).await
            }
            Err(e) => Err(WriteError::Failed(DisplayErrorContext(e).to_string())),
        }
    }
}
