//! The OpenAPI 3.1 document of every endpoint, served at `/openapi.json`.
//!
//! Each handler carries its own `#[utoipa::path]`. The answers that a whole kind of endpoint
//! can give — a JSON body's 400, 413, 415 and 422, a bearer's 401, any endpoint's 500 and
//! 503 — are added here once, by the rules the extractors and middleware follow. `scripts/api-schema`
//! checks the document against a live server with schemathesis.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Server};
use utoipa::{Modify, OpenApi, PartialSchema as _, ToSchema};

use super::error::{ErrorBody, OAuthErrorBody};
use super::{api, browser, oauth, wellknown};
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
        oauth::userinfo_post,
        browser::authorize,
        browser::authorize_post,
        browser::login,
        browser::consent,
        browser::logout,
        browser::logout_post,
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
        (name = "browser", description = "The authorization code flow's hosted pages (HTML, for browsers)"),
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
    // A tree of strings, numbers and maps always serialises; the tests fetch it.
    Bytes::from(doc.to_json().expect("the OpenAPI document serialises"))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(State(doc): State<Bytes>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], doc)
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
const NO_SCOPES: [&str; 0] = [];

/// An answer that a whole kind of endpoint can give, kept once as a named component.
struct Shared {
    name: &'static str,
    status: &'static str,
    description: &'static str,
}

/// What the JSON-body extractor refuses.
const JSON_BODY: [Shared; 4] = [
    Shared {
        name: "MalformedJson",
        status: "400",
        description: "The body is not JSON (`malformed_json`) or could not be read (`bad_request`)",
    },
    Shared {
        name: "BodyTooLarge",
        status: "413",
        description: "The body is larger than `ISSUER_MAX_BODY_BYTES` (`body_too_large`)",
    },
    Shared {
        name: "UnsupportedMediaType",
        status: "415",
        description: "The body is not `application/json` (`unsupported_media_type`)",
    },
    Shared {
        name: "InvalidField",
        status: "422",
        description: "A field is missing or of the wrong type, or its value is refused \
            (`invalid_field`, `invalid_email`, `weak_password`); `field` names it",
    },
];

/// What the bearer extractor refuses.
const BEARER: Shared = Shared {
    name: "Unauthorized",
    status: "401",
    description: "No access token (`unauthorized`), or one that is invalid, expired or revoked \
        (`invalid_token`)",
};

/// What any endpoint can answer. The OAuth endpoints answer these in RFC 6749's shape, except
/// when the router itself sheds the request or times it out.
const FAILURES: [Shared; 2] = [
    Shared {
        name: "InternalError",
        status: "500",
        description: "A bug: the body carries only the request id, the log the rest",
    },
    Shared {
        name: "Unavailable",
        status: "503",
        description: "Overloaded, in all or for this client (`overloaded`, with `Retry-After`), \
            timed out (`timeout`), or a dependency is down (`unavailable`)",
    },
];

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
        let error_body = || RefOr::Ref(Ref::from_schema_name(ErrorBody::name()));
        let either_body = || {
            RefOr::T(Schema::OneOf(
                OneOfBuilder::new()
                    .item(Ref::from_schema_name(OAuthErrorBody::name()))
                    .item(Ref::from_schema_name(ErrorBody::name()))
                    .build(),
            ))
        };
        let answers = &mut components.responses;
        for shared in JSON_BODY.iter().chain([&BEARER]) {
            answers.insert(component(shared, false), shared_answer(shared, error_body()));
        }
        for shared in &FAILURES {
            answers.insert(component(shared, false), shared_answer(shared, error_body()));
            answers.insert(component(shared, true), shared_answer(shared, either_body()));
        }
        for item in doc.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                add_shared(operation);
            }
        }
    }
}

/// The component name of a shared answer; the OAuth endpoints have their own failures.
fn component(shared: &Shared, oauth: bool) -> String {
    if oauth {
        format!("OAuth{}", shared.name)
    } else {
        shared.name.to_owned()
    }
}

fn shared_answer(shared: &Shared, body: RefOr<Schema>) -> RefOr<Response> {
    let mut answer = ResponseBuilder::new()
        .description(shared.description)
        .content(JSON, Content::new(Some(body)))
        .build();
    match shared.status {
        "401" => add_header(
            &mut answer,
            "WWW-Authenticate",
            "`Bearer`, with `error=\"invalid_token\"` when a token was sent (RFC 6750 §3)",
        ),
        "503" => add_header(
            &mut answer,
            "Retry-After",
            "When overloaded: seconds until a retry may succeed",
        ),
        _ => {}
    }
    add_request_id(&mut answer);
    RefOr::T(answer)
}

fn add_shared(operation: &mut Operation) {
    let body_is = |media_type: &str| match &operation.request_body {
        Some(RefOr::T(body)) => body.content.contains_key(media_type),
        _ => false,
    };
    let (json_body, oauth) = (body_is(JSON), body_is(FORM));
    let bearer = operation
        .security
        .iter()
        .flatten()
        .any(|requirement| *requirement == SecurityRequirement::new("bearer", NO_SCOPES));
    let answers = &mut operation.responses.responses;
    for answer in answers.values_mut() {
        if let RefOr::T(answer) = answer {
            add_request_id(answer);
        }
    }
    if let Some(RefOr::T(answer)) = answers.get_mut("429") {
        add_header(answer, "Retry-After", "Seconds until a retry may succeed");
    }
    if let (true, Some(RefOr::T(answer))) = (oauth, answers.get_mut("401")) {
        add_header(answer, "WWW-Authenticate", "`Basic` (RFC 6749 §5.2)");
    }
    let shared = JSON_BODY
        .iter()
        .filter(|_| json_body)
        .chain(Some(&BEARER).filter(|_| bearer))
        .map(|shared| (shared, false))
        .chain(FAILURES.iter().map(|shared| (shared, oauth)));
    for (shared, oauth) in shared {
        if !answers.contains_key(shared.status) {
            let reference = Ref::from_response_name(component(shared, oauth));
            answers.insert(shared.status.to_owned(), RefOr::Ref(reference));
        }
    }
}

fn add_request_id(answer: &mut Response) {
    add_header(
        answer,
        "X-Request-Id",
        "The request's id: the caller's when well-formed, else a new one",
    );
}

fn add_header(answer: &mut Response, name: &str, description: &str) {
    let header = HeaderBuilder::new()
        .schema(Some(String::schema()))
        .description(Some(description))
        .build();
    answer.headers.insert(name.to_owned(), RefOr::T(header));
}
