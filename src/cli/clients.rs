//! `token-issuer clients …`: registered OAuth clients. Secrets are printed once, when made.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::oauth::clients::NewClient;
use crate::oauth::{ClientError, Clients};
use crate::store::ClientRecord;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client. Prints its secret once — or, with --jwk, registers its public key
    /// for private_key_jwt, or with --public makes none (a browser or native app using PKCE).
    Create {
        /// The client id: 1–128 of A–Z a–z 0–9 . _ ~ - (it may begin with '-').
        #[arg(long, allow_hyphen_values = true, value_name = "ID")]
        id: String,
        /// authorization_code, client_credentials, refresh_token; repeat for several.
        #[arg(long = "grant", required = true, value_name = "GRANT")]
        grants: Vec<String>,
        /// Space-separated scopes the client may ask for; repeatable.
        #[arg(long = "scope", value_name = "SCOPES")]
        scopes: Vec<String>,
        /// An audience (RFC 8707 resource, any absolute URI) the client may ask for; the
        /// first is the default; repeatable.
        #[arg(long = "audience", value_name = "URI")]
        audiences: Vec<String>,
        /// Lifetime of its access tokens (90s, 5m, 1h), at most ISSUER_ACCESS_TOKEN_TTL.
        #[arg(long, value_parser = crate::values::parse_duration, value_name = "DURATION")]
        access_token_ttl: Option<Duration>,
        /// The client's public key as a JWK (RSA, EC P-256 or Ed25519).
        #[arg(long, value_name = "FILE")]
        jwk: Option<PathBuf>,
        /// Where codes may be sent (authorization_code): https, http on loopback (any port
        /// matches for 127.0.0.1 and [::1]), or an app's reverse-domain scheme; repeatable.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may send the browser afterwards; repeatable.
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (SPA, mobile or CLI app): no secret, PKCE alone protects its codes.
        #[arg(long, conflicts_with = "jwk")]
        public: bool,
        /// A client of your own: its users see no consent page.
        #[arg(long)]
        first_party: bool,
        /// ID-token algorithm: RS256 (the default) or EdDSA.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// Show the registered clients (never a secret).
    List {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client: its credentials stop working at once.
    Delete {
        /// The client id (it may begin with '-').
        #[arg(allow_hyphen_values = true, value_name = "ID")]
        id: String,
    },
    /// Make a new secret and print it once; the old one stops working at once.
    RotateSecret {
        /// The client id (it may begin with '-').
        #[arg(allow_hyphen_values = true, value_name = "ID")]
        id: String,
    },
}

pub async fn run(clients: &Clients, command: ClientsCommand) -> Result<(), ClientError> {
    match command {
        ClientsCommand::Create {
            id,
            grants,
            scopes,
            audiences,
            access_token_ttl,
            jwk,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party,
            id_token_alg,
        } => {
            let jwk = jwk
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map_err(|e| ClientError::InvalidJwk(format!("{}: {e}", path.display())))
                })
                .transpose()?;
            let new = NewClient {
                id,
                grants,
                scopes,
                audiences,
                access_token_ttl,
                jwk,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                first_party,
                id_token_alg,
            };
            let (record, secret) = clients.create(new).await?;
            tracing::info!(target: "audit", event = "client_created", client_id = %record.id, grants = %record.grant_types);
            println!("client_id: {}", record.id);
            match secret {
                Some(secret) => {
                    println!("client_secret: {}", secret.expose());
                    println!("(the secret is shown only now; it is stored as a hash)");
                }
                None if record.public_jwk.is_some() => {
                    println!("authentication: private_key_jwt with the registered key")
                }
                None => println!("authentication: none (a public client: PKCE protects its codes)"),
            }
            Ok(())
        }
        ClientsCommand::List { json } => {
            let all = clients.list().await?;
            if json {
                let rows: Vec<_> = all.iter().map(view).collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if all.is_empty() {
                println!("no clients");
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.clone(),
                            auth_method(c).to_owned(),
                            c.grant_types.clone(),
                            c.audiences.clone(),
                            c.scopes.clone(),
                            c.redirect_uris.clone(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    super::table::render(
                        &["ID", "AUTH", "GRANTS", "AUDIENCES", "SCOPES", "REDIRECT URIS"],
                        &rows
                    )
                );
            }
            Ok(())
        }
        ClientsCommand::Delete { id } => {
            clients.delete(&id).await?;
            tracing::info!(target: "audit", event = "client_deleted", client_id = %id);
            println!("deleted {id}");
            Ok(())
        }
        ClientsCommand::RotateSecret { id } => {
            let secret = clients.rotate_secret(&id).await?;
            tracing::info!(target: "audit", event = "client_secret_rotated", client_id = %id);
            println!("client_id: {id}");
            println!("client_secret: {}", secret.expose());
            println!("(the old secret no longer works; the new one is shown only now)");
            Ok(())
        }
    }
}

/// The client's `token_endpoint_auth_method`, and in the table whether it is first-party.
fn auth_method(c: &ClientRecord) -> &'static str {
    match (&c.secret_hash, &c.public_jwk) {
        (_, Some(_)) => "private_key_jwt",
        (Some(_), None) => "client_secret",
        (None, None) => "none",
    }
}

fn view(c: &ClientRecord) -> serde_json::Value {
    let time = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
    };
    let list = |s: &str| s.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>();
    json!({
        "id": c.id,
        "auth": auth_method(c),
        "grant_types": list(&c.grant_types),
        "scopes": list(&c.scopes),
        "audiences": list(&c.audiences),
        "redirect_uris": list(&c.redirect_uris),
        "post_logout_redirect_uris": list(&c.post_logout_redirect_uris),
        "public": c.secret_hash.is_none() && c.public_jwk.is_none(),
        "first_party": c.first_party != 0,
        "id_token_signed_response_alg": c.id_token_alg,
        "access_token_ttl": c.access_token_ttl,
        "created_at": time(c.created_at),
        "secret_rotated_at": c.secret_rotated_at.and_then(time),
    })
}
