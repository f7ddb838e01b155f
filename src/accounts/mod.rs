//! Accounts: registration, login, erasure, and the sessions a login opens.

mod email;
mod login_sessions;
pub mod password;
mod policy;
mod sessions;
pub mod throttle;

pub use email::{normalize_email, EmailProblem};
pub use login_sessions::{LoginSession, LoginSessions};
pub use password::{Password, Passwords};
pub use policy::{check_password, PasswordProblem};
pub use sessions::{SessionError, SessionParts, Sessions};

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::store::{NewUser, Store, StoreError, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    InvalidEmail(#[from] EmailProblem),
    #[error("{0}")]
    WeakPassword(#[from] PasswordProblem),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email or wrong password: deliberately indistinguishable.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The password given to confirm an action on one's own account is wrong.
    #[error("the password is wrong")]
    WrongPassword,
    #[error("this account is disabled")]
    Disabled,
    /// No such user, or a disabled one: a token naming them no longer counts.
    #[error("no such active user")]
    NotFound,
    /// An operator named an email that no account has.
    #[error("no user with email {0}")]
    UnknownEmail(String),
    /// Too many password checks already waiting: a flood is refused, not queued.
    #[error("password hashing is at capacity")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: OffsetDateTime,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        Self {
            id: r.id,
            email: r.email,
            created_at: OffsetDateTime::from_unix_timestamp(r.created_at)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    passwords: Passwords,
    min_password_chars: usize,
    clock: Clock,
}

impl Accounts {
    pub fn new(store: Store, passwords: Passwords, min_password_chars: usize, clock: Clock) -> Self {
        Self {
            store,
            passwords,
            min_password_chars,
            clock,
        }
    }

    pub async fn register(&self, email: &str, password: &str) -> Result<User, AccountError> {
        let email = normalize_email(email)?;
        let password = Password::new(password);
        check_password(&password, &email, self.min_password_chars)?;
        let password_hash = self.passwords.hash(password).await?;
        let now = self
            .clock
            .now()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let id = uuid::Uuid::new_v4().to_string();
        let new = NewUser {
            id: &id,
            email: &email,
            password_hash: &password_hash,
            created_at: now.unix_timestamp(),
        };
        match self.store.insert_user(new).await {
            Err(StoreError::Conflict) => return Err(AccountError::EmailTaken),
            other => other?,
        };
        Ok(User {
            id,
            email,
            created_at: now,
        })
    }

    /// Checks email and password. Unknown emails cost one argon2 verification too, and get
    /// the same error as a wrong password. Re-hashes on success when parameters changed.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<User, AccountError> {
        let record = match normalize_email(email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let verified = self
            .passwords
            .verify(
                Password::new(password),
                record.as_ref().map(|r| r.password_hash.clone()),
            )
            .await?;
        let record = match record {
            Some(r) if verified.matches => r,
            _ => return Err(AccountError::InvalidCredentials),
        };
        if record.disabled_at.is_some() {
            return Err(AccountError::Disabled);
        }
        if verified.needs_rehash {
            let hash = self.passwords.hash(Password::new(password)).await?;
            self.store.set_password_hash(&record.id, &hash).await?;
            tracing::info!(user_id = %record.id, "password re-hashed with current parameters");
        }
        Ok(record.into())
    }

    /// An active user by id.
    pub async fn find(&self, id: &str) -> Result<User, AccountError> {
        match self.store.user_by_id(id).await? {
            Some(record) if record.disabled_at.is_none() => Ok(record.into()),
            _ => Err(AccountError::NotFound),
        }
    }

    /// Erases a user, their sessions and refresh tokens, after checking the password.
    pub async fn delete(&self, id: &str, password: &str) -> Result<(), AccountError> {
        let record = self.store.user_by_id(id).await?.ok_or(AccountError::NotFound)?;
        let verified = self
            .passwords
            .verify(Password::new(password), Some(record.password_hash))
            .await?;
        if !verified.matches {
            return Err(AccountError::WrongPassword);
        }
        self.store.delete_user(id).await?;
        Ok(())
    }

    /// Disables or re-enables login for an email; the user's id.
    pub async fn set_disabled(&self, email: &str, disabled: bool) -> Result<String, AccountError> {
        let email = normalize_email(email)?;
        let at = disabled.then(|| self.clock.unix());
        self.store
            .set_user_disabled(&email, at)
            .await?
            .ok_or(AccountError::UnknownEmail(email))
    }
}
