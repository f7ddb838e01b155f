//! Verifies an access token offline, the way a downstream service does: fetch the issuer's
//! JWKS, pick the key by `kid`, pin the algorithm from the JWK, check `typ`, `iss`, `aud`.
//!
//!     cargo run -q --example verify_token -- http://127.0.0.1:8080 "$ACCESS_TOKEN"

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(token)) = (args.next(), args.next()) else {
        return Err("usage: verify_token ISSUER_URL ACCESS_TOKEN".into());
    };
    let jwks: JwkSet = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let header = jsonwebtoken::decode_header(&token)?;
    if header.typ.as_deref() != Some("at+jwt") {
        return Err("not an access token (typ is not at+jwt)".into());
    }
    let kid = header.kid.ok_or("token has no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in the issuer's JWKS")?;
    let alg = jwk
        .common
        .key_algorithm
        .ok_or("JWK has no alg")?
        .to_string()
        .parse()?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&issuer]);
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims;
    println!(
        "valid {alg:?} token, kid {kid}\n{}",
        serde_json::to_string_pretty(&claims)?
    );
    Ok(())
}
