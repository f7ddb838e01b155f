//! Password policy after NIST SP 800-63B: a minimum length, long passphrases and any Unicode
//! allowed, no composition rules, guessable passwords refused.

use super::password::Password;

/// Longer input is refused before hashing so it cannot be used to burn CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("password must be at least {0} characters long")]
    TooShort(usize),
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    #[error("password is too easy to guess{0}")]
    Guessable(String),
}

pub fn check_password(password: &Password, email: &str, min_chars: usize) -> Result<(), PasswordProblem> {
    let text = password.expose();
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    if text.chars().count() < min_chars {
        return Err(PasswordProblem::TooShort(min_chars));
    }
    let local_part = email.split('@').next().unwrap_or_default();
    let estimate = zxcvbn::zxcvbn(text, &[email, local_part, "token-issuer"]);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(PasswordProblem::Guessable(hint));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), PasswordProblem> {
        check_password(&Password::new(pw), "alice.smith@example.com", 12)
    }

    #[test]
    fn accepts_long_unguessable_passphrases_in_any_script() {
        assert_eq!(check("violet tractor melts quietly"), Ok(()));
        assert_eq!(check("Грузовик фиолетовый тает тихо"), Ok(()));
        let long = "the quick violet tractor melts beside forty ancient lighthouses while seven \
                    sleepy otters juggle marmalade under a crooked bridge of humming glass";
        assert!(long.len() > 140);
        assert_eq!(check(long), Ok(()), "long passphrases are fine");
    }

    #[test]
    fn refuses_short_long_and_guessable_passwords() {
        assert_eq!(check("Xk9#mQ2$"), Err(PasswordProblem::TooShort(12)));
        assert_eq!(check(&"a".repeat(1025)), Err(PasswordProblem::TooLong));
        assert!(matches!(
            check("password1234"),
            Err(PasswordProblem::Guessable(_))
        ));
        assert!(matches!(
            check("aaaaaaaaaaaaaaaa"),
            Err(PasswordProblem::Guessable(_))
        ));
        assert!(
            matches!(check("alice.smith2024"), Err(PasswordProblem::Guessable(_))),
            "built from the email"
        );
    }
}
