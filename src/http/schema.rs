//! Types that only describe requests and answers in the OpenAPI document: the JWKS is bytes
//! computed once per keyset load, and the OAuth forms are read by `FormParams` (which refuses
//! repeated parameters), so no Rust value of these types is ever made. schemathesis checks them against the live server. A form
//! field that may be left out is `#[serde(default)]`: optional, and never null.

use utoipa::ToSchema;

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    keys: Vec<PublicJwk>,
}

/// A public signing key: RSA (`n`, `e`) or Ed25519 (`crv`, `x`); never private parameters.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PublicJwk {
    /// `RSA` or `OKP`.
    kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    use_: String,
    /// `RS256` or `EdDSA`.
    alg: String,
    /// The RFC 7638 thumbprint of the key.
    kid: String,
    /// RSA: the modulus.
    #[serde(default)]
    n: String,
    /// RSA: the public exponent.
    #[serde(default)]
    e: String,
    /// OKP: `Ed25519`.
    #[serde(default)]
    crv: String,
    /// OKP: the public key.
    #[serde(default)]
    x: String,
}

/// A token request (RFC 6749 §4.4, §6).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    grant_type: crate::oauth::GrantType,
    /// With `refresh_token`.
    #[serde(default)]
    refresh_token: String,
    /// With `client_credentials`: a subset of the client's scopes (space-separated).
    #[serde(default)]
    scope: String,
    /// With `client_credentials`: audiences the client may ask for (RFC 8707).
    #[serde(default)]
    resource: Vec<String>,
    /// With `client_credentials`: an audience the client may ask for.
    #[serde(default)]
    audience: String,
    /// With `authorization_code`: the code from the redirect.
    #[serde(default)]
    code: String,
    /// With `authorization_code`: the redirect URI of the authorization request.
    #[serde(default)]
    redirect_uri: String,
    /// With `authorization_code`: the PKCE verifier (RFC 7636).
    #[serde(default)]
    code_verifier: String,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// An introspection request (RFC 7662 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionRequest {
    token: String,
    /// `access_token` or `refresh_token`: which kind to look for first.
    #[serde(default)]
    token_type_hint: String,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// A revocation request (RFC 7009 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevocationRequest {
    token: String,
    /// Accepted and not needed: a refresh token is looked for first, then an access token.
    #[serde(default)]
    token_type_hint: String,
    #[schema(inline)]
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// Client authentication in the body: `client_secret_post`, `private_key_jwt` (RFC 7523), or
/// just `client_id=first-party` for the built-in public client.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClientAuthentication {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[serde(default)]
    client_assertion_type: String,
    #[serde(default)]
    client_assertion: String,
}

/// An authorization request (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core §3.1.2.1): in
/// the query of `GET /oauth2/authorize`, or as the form of `POST`.
#[derive(ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuthorizationParams {
    /// `code`.
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    /// One of the client's registered redirect URIs (a loopback one on any port).
    #[serde(default)]
    redirect_uri: String,
    /// Space-separated; within the client's scopes; all of them when absent.
    #[serde(default)]
    scope: String,
    /// Echoed back in the redirect.
    #[serde(default)]
    state: String,
    /// Put into the ID token.
    #[serde(default)]
    nonce: String,
    /// base64url(SHA-256(verifier)): 43 characters.
    #[serde(default)]
    code_challenge: String,
    /// `S256` (nothing else).
    #[serde(default)]
    code_challenge_method: String,
    /// `none`, `login`, `consent`, `select_account`.
    #[serde(default)]
    prompt: String,
    /// Seconds since the last password entry after which the user must log in again.
    #[serde(default)]
    max_age: String,
    /// An email to fill in on the login page.
    #[serde(default)]
    login_hint: String,
}

/// The hosted login form: the authorization request's fields (hidden), its CSRF token, and
/// what the user typed.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoginForm {
    /// The value of the browser's CSRF cookie.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[schema(inline)]
    #[serde(flatten)]
    request: AuthorizationParams,
}

/// The consent form: `decision` is `allow` or `deny`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[schema(inline)]
    #[serde(flatten)]
    request: AuthorizationParams,
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2).
#[derive(ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LogoutParams {
    /// An ID token of the session: the session ends without asking.
    #[serde(default)]
    id_token_hint: String,
    #[serde(default)]
    client_id: String,
    /// One of the client's registered post-logout redirect URIs.
    #[serde(default)]
    post_logout_redirect_uri: String,
    #[serde(default)]
    state: String,
    /// On the confirmation form only: the browser's CSRF token.
    #[serde(default)]
    csrf: String,
}
