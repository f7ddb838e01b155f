//! Email addresses: trimmed, domain lower-cased, checked for a plausible shape.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailProblem(&'static str);

pub fn normalize_email(raw: &str) -> Result<String, EmailProblem> {
    let email = raw.trim();
    if email.len() > 254 {
        return Err(EmailProblem("email is longer than 254 characters"));
    }
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or(EmailProblem("email must contain @"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(EmailProblem("the part before @ must be 1 to 64 characters"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c))
    {
        return Err(EmailProblem(
            "the part before @ contains a character that is not allowed",
        ));
    }
    let domain = domain.to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(EmailProblem("the domain after @ is not valid"));
    }
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases_the_domain_only() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").as_deref(),
            Ok("Alice@example.com")
        );
        assert_eq!(
            normalize_email("a+tag@sub.example.org").as_deref(),
            Ok("a+tag@sub.example.org")
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "al ice@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            "alice@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
