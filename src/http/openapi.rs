//! The OpenAPI 3.1 document of every endpoint, served at `/openapi.json`.
//!
//! Each handler carries its own `#[utoipa::path]`. The answers that a whole kind of endpoint
//! can give — a JSON body's 400, 413, 415 and 422, a bearer's 401, 503 when overloaded — are
//! added here once, by the rules the extractors and middleware follow. `scripts/api-schema`
//! checks the document against a live server with schemathesis.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder, Server};
use utoipa::{Modify, OpenApi, PartialSchema as _, ToSchema};

use super::error::ErrorBody;
use super::{api, oauth, wellknown};
use crate::config::Settings;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "token-issuer",
        description = "Short-lived JWT access tokens signed with rotating asymmetric keys, rotating refresh tokens, and the JWKS to verify them offline.",
    ),
    paths(
        wellknown::jwks,
        wellknown::openid_configuration,
        wellknown::discovery,
        oauth::token,
        oauth::introspect,
        oauth::revoke,
        oauth::userinfo,
        api::register,
        api::login,
        api::refresh,
        api::logout,
        api::logout_all,
        api::me,
        api::delete_me,
        wellknown::healthz,
        wellknown::readyz,
        wellknown::metrics,
        openapi_json,
    ),
    tags(
        (name = "keys", description = "What verifiers fetch: the public keys and the issuer's metadata"),
        (name = "oauth", description = "OAuth 2.0 for clients and resource servers"),
        (name = "accounts", description = "Accounts and first-party sessions"),
        (name = "operations", description = "Probes, metrics and this document"),
    ),
    modifiers(&CommonAnswers),
)]
struct ApiDoc;

/// The document as served: its server is the issuer, and `/metrics` is left out when it is
/// served on the admin listener instead.
pub fn document(settings: &Settings) -> Bytes {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(settings.url.clone())]);
    if settings.admin_bind.is_some() {
        doc.paths.paths.remove("/metrics");
    }
    // A tree of strings, numbers and maps always serialises.
    Bytes::from(doc.to_json().unwrap_or_default())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(State(doc): State<Bytes>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], doc)
}

const JSON: &str = "application/json";
const NO_SCOPES: [&str; 0] = [];

/// Security schemes, the shared answers, and the headers that some answers always carry.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/api/v1/auth/login` or `/api/v1/auth/refresh`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A registered client's id and secret (RFC 6749 §2.3.1)"))
                    .build(),
            ),
        );
        for (name, status, description) in SHARED {
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(error_answer(status, description)));
        }
        for item in doc.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                add_shared(operation);
            }
        }
        for component in components.responses.values_mut() {
            if let RefOr::T(response) = component {
                add_request_id(response);
            }
        }
    }
}

/// Answers the extractors and middleware give: (component name, status, description).
const SHARED: &[(&str, &str, &str)] = &[
    (
        "MalformedJson",
        "400",
        "The body is not valid JSON (`malformed_json`)",
    ),
    (
        "Unauthorized",
        "401",
        "No access token, or one that is invalid, expired or revoked (`unauthorized`, `invalid_token`)",
    ),
    (
        "BodyTooLarge",
        "413",
        "The body is larger than `ISSUER_MAX_BODY_BYTES` (`body_too_large`)",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not `application/json` (`unsupported_media_type`)",
    ),
    (
        "InvalidField",
        "422",
        "A field is missing, unknown, of the wrong type or refused; `field` names it",
    ),
    (
        "Unavailable",
        "503",
        "Overloaded, timed out, or a dependency is down; retry shortly (`Retry-After` when overloaded)",
    ),
];

fn error_answer(status: &str, description: &str) -> Response {
    let mut answer = ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            utoipa::openapi::Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
        )
        .build();
    add_status_headers(status, &mut answer);
    answer
}

fn add_shared(operation: &mut Operation) {
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| matches!(body, RefOr::T(body) if body.content.contains_key(JSON)));
    let bearer = operation
        .security
        .iter()
        .flatten()
        .any(|requirement| *requirement == SecurityRequirement::new("bearer", NO_SCOPES));
    let answers = &mut operation.responses.responses;
    for (name, status, _) in SHARED {
        let applies = match *status {
            "401" => bearer,
            "503" => true,
            _ => json_body,
        };
        if applies && !answers.contains_key(*status) {
            answers.insert((*status).to_owned(), RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
    for (status, answer) in answers.iter_mut() {
        if let RefOr::T(answer) = answer {
            add_status_headers(status, answer);
            add_request_id(answer);
        }
    }
}

/// `WWW-Authenticate` on every 401 (RFC 6750 §3, RFC 6749 §5.2), `Retry-After` on every 429.
fn add_status_headers(status: &str, answer: &mut Response) {
    let (name, description) = match status {
        "401" => (
            "WWW-Authenticate",
            "The scheme to authenticate with (`Bearer` or `Basic`)",
        ),
        "429" => ("Retry-After", "Seconds until a retry may succeed"),
        _ => return,
    };
    answer.headers.insert(name.to_owned(), string_header(description));
}

fn add_request_id(answer: &mut Response) {
    answer.headers.insert(
        "X-Request-Id".to_owned(),
        string_header("The request's id: the caller's when well-formed, else a new one"),
    );
}

fn string_header(description: &str) -> RefOr<utoipa::openapi::header::Header> {
    RefOr::T(
        HeaderBuilder::new()
            .schema(Some(String::schema()))
            .description(Some(description))
            .build(),
    )
}

// The types below only describe: the JWKS and the metadata are bytes computed once at load,
// and the OAuth forms are read by `FormParams` (which refuses repeated parameters), so no
// Rust value of these types is ever made. schemathesis checks them against the live server.

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// A public signing key: RSA (`n`, `e`) or Ed25519 (`crv`, `x`); never private parameters.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    /// `RSA` or `OKP`.
    kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    use_: String,
    /// `RS256` or `EdDSA`.
    alg: String,
    /// The RFC 7638 thumbprint of the key.
    kid: String,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
}

/// Authorization-server metadata (RFC 8414 §2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    userinfo_endpoint: String,
    grant_types_supported: Vec<String>,
    response_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    subject_types_supported: Vec<String>,
    access_token_signing_alg_values_supported: Vec<String>,
    /// The scopes of the registered clients; absent while the database cannot be read.
    scopes_supported: Option<Vec<String>>,
}

/// A token request (RFC 6749 §4.4, §6).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    grant_type: GrantType,
    /// With `refresh_token`.
    refresh_token: Option<String>,
    /// With `client_credentials`: a subset of the client's scopes (space-separated).
    scope: Option<String>,
    /// With `client_credentials`: audiences the client may ask for (RFC 8707).
    resource: Option<Vec<String>>,
    /// With `client_credentials`: an audience the client may ask for.
    audience: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GrantType {
    ClientCredentials,
    RefreshToken,
}

/// An introspection request (RFC 7662 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionRequest {
    token: String,
    /// `access_token` or `refresh_token`: which kind to look for first.
    token_type_hint: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// A revocation request (RFC 7009 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevocationRequest {
    token: String,
    /// `access_token` or `refresh_token`: which kind to look for first.
    token_type_hint: Option<String>,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// Client authentication in the body: `client_secret_post`, `private_key_jwt` (RFC 7523), or
/// just `client_id=first-party` for the built-in public client.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClientAuthentication {
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}
