//! Verifies one token with token-verifier and prints its claims; exits non-zero if refused.
//!
//!     cargo run -p token-verifier --example verify -- ISSUER AUDIENCE TOKEN [JWKS_URL]
//!
//! Without JWKS_URL the key set is found by discovery.

use token_verifier::{Claims, Verifier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, audience, token, rest @ ..] = args.as_slice() else {
        return Err("usage: verify ISSUER AUDIENCE TOKEN [JWKS_URL]".into());
    };
    let mut builder = Verifier::builder(issuer).audience(audience);
    if let Some(url) = rest.first() {
        builder = builder.jwks_url(url);
    }
    let claims: Claims = builder.build().await?.verify(token).await?;
    println!(
        "token-verifier: valid token of {}\n{}",
        claims.sub,
        serde_json::to_string_pretty(&claims)?
    );
    Ok(())
}
