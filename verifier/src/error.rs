//! Why a token was refused. Say it in logs; tell the caller only "invalid_token".

/// A verification failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("token is larger than {0} bytes")]
    TooLarge(usize),
    #[error("token is not a well-formed JWS")]
    Malformed,
    #[error("typ {0:?} is not accepted")]
    WrongType(Option<String>),
    #[error("token header has no kid")]
    MissingKid,
    #[error("critical header parameters are not supported")]
    UnsupportedCritical,
    #[error("kid {0:?} is not in the issuer's key set")]
    UnknownKid(String),
    #[error("alg {got:?} does not match the key's {expected:?}")]
    AlgorithmMismatch {
        expected: jsonwebtoken::Algorithm,
        got: jsonwebtoken::Algorithm,
    },
    #[error("signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("claims are missing or malformed: {0}")]
    InvalidClaims(String),
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

impl From<jsonwebtoken::errors::Error> for VerifyError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => VerifyError::BadSignature,
            ErrorKind::ExpiredSignature => VerifyError::Expired,
            ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
            ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
            ErrorKind::InvalidAudience => VerifyError::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) => VerifyError::InvalidClaims(format!("missing {c}")),
            ErrorKind::Json(e) => VerifyError::InvalidClaims(e.to_string()),
            _ => VerifyError::Malformed,
        }
    }
}
