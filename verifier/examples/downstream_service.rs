//! A downstream service that accepts only valid access tokens of a token-issuer.
//!
//!     ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:8080 \
//!         cargo run -p token-verifier --example downstream_service
//!
//! Then `curl -H "authorization: Bearer $ACCESS" http://127.0.0.1:3000/hello`.

use axum::routing::get;
use axum::Router;
use token_verifier::axum::{require_bearer, Authenticated};
use token_verifier::Verifier;

async fn hello(Authenticated(claims): Authenticated) -> String {
    format!(
        "hello {} (token {} of client {})\n",
        claims.sub, claims.jti, claims.client_id
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    // Discovery finds the JWKS; keys are fetched on first use and cached.
    let verifier = Verifier::builder(&issuer).audience(audience).build().await?;
    let app = Router::new()
        .route("/hello", get(hello))
        .layer(axum::middleware::from_fn_with_state(
            verifier.clone(),
            require_bearer,
        ))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("downstream service on http://{bind}, trusting tokens of {issuer}");
    axum::serve(listener, app).await?;
    Ok(())
}
