//! The authorization-code flow with PKCE and OpenID Connect, as a browser and an app see it:
//! real HTTP, a cookie-keeping client that follows no redirect (the test reads each one), and
//! the issuer's own JWKS to verify what comes back.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use token_issuer::oauth::clients::NewClient;
use token_issuer::testkit::{segment, TestServer, PASSWORD};

use crate::common::start;

pub const APP: &str = "notes-app";
/// Registered without a port: a native app's loopback redirect matches on any port.
pub const REDIRECT: &str = "http://127.0.0.1/callback";
pub const CALLBACK: &str = "http://127.0.0.1:51234/callback";
pub const AFTER_LOGOUT: &str = "https://notes.example.com/bye";
pub const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789abcdef";

pub fn challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// A public app with refresh tokens, asking for its users' consent.
pub async fn register_app(s: &TestServer, id: &str, first_party: bool) {
    s.register_client(NewClient {
        id: id.into(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid email notes:read".into()],
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
        public: true,
        first_party,
        ..Default::default()
    })
    .await;
}

/// A browser: keeps cookies, follows no redirect.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

/// A page the browser holds: its status, headers and HTML.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> String {
        assert_eq!(self.status, 303, "a redirect, not: {}", self.html);
        self.headers["location"].to_str().expect("location").to_owned()
    }

    /// The hidden fields of the page's form, decoded.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        self.html
            .split("<input type=\"hidden\" ")
            .skip(1)
            .filter_map(|rest| {
                let name = rest.strip_prefix("name=\"")?.split('"').next()?;
                let value = rest.split("value=\"").nth(1)?.split('"').next()?;
                Some((unescape(name), unescape(value)))
            })
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

impl Browser {
    pub fn new(s: &TestServer) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            base: s.base.clone(),
        }
    }

    async fn page(resp: reqwest::Response) -> Page {
        Page {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            html: resp.text().await.expect("body"),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(url).send().await.expect("get")).await
    }

    /// Opens the authorization endpoint for `client` with PKCE, a state and a nonce, and
    /// `extra` parameters (which replace the defaults of the same name).
    pub async fn authorize(&self, client: &str, extra: &[(&str, &str)]) -> Page {
        let challenge = challenge(VERIFIER);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email notes:read"),
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        params.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("{}/oauth2/authorize?{query}", self.base)).await
    }

    /// Submits the page's form to `action` with its hidden fields and `fields`.
    pub async fn submit(&self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = page.hidden_fields();
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let resp = self
            .http
            .post(format!("{}{action}", self.base))
            .form(&form)
            .send()
            .await
            .expect("post");
        Self::page(resp).await
    }

    pub async fn log_in(&self, page: &Page, email: &str) -> Page {
        assert_eq!(page.status, 200, "the login page: {}", page.html);
        assert!(page.html.contains("name=\"password\""), "{}", page.html);
        self.submit(
            page,
            "/oauth2/authorize/login",
            &[("email", email), ("password", PASSWORD)],
        )
        .await
    }

    /// From the authorization request to the code, logging in and approving as needed.
    pub async fn code_for(&self, client: &str, email: &str) -> String {
        let mut page = self.authorize(client, &[]).await;
        if page.html.contains("name=\"password\"") {
            page = self.log_in(&page, email).await;
        }
        if page.html.contains("value=\"allow\"") {
            page = self
                .submit(&page, "/oauth2/authorize/consent", &[("decision", "allow")])
                .await;
        }
        let back = query(&page.location());
        back["code"].clone()
    }
}

/// Exchanges a code as the public app does.
pub async fn exchange(s: &TestServer, client: &str, code: &str) -> reqwest::Response {
    s.post_form(
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// Refreshes as the public app does, asking for `scope` if given.
pub async fn refresh_grant(
    s: &TestServer,
    client: &str,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", token),
    ];
    form.extend(scope.map(|scope| ("scope", scope)));
    s.post_form("/oauth2/token", &form).await
}

/// Verifies an ID token as a relying party does: signature by the issuer's published key, the
/// issuer, the audience, the expiry.
pub async fn verify_id_token(s: &TestServer, token: &str, client: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(s.jwks().await).expect("jwks");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("published key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client]);
    validation.set_issuer(&[&s.base]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a valid ID token")
        .claims
}

#[tokio::test]
async fn an_app_logs_a_user_in_with_pkce_and_gets_verified_tokens() {
    let s = start().await;
    let user = s.register("ada@example.com").await;
    register_app(&s, APP, false).await;
    let browser = Browser::new(&s);

    // The login page: a form, never cached or framed, with a CSRF cookie.
    let login = browser.authorize(APP, &[]).await;
    assert_eq!(login.status, 200, "{}", login.html);
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(login.html.contains("<html lang=\"en\">"));
    assert!(login.html.contains("<label for=\"email\">") && login.html.contains("<label for=\"password\">"));
    assert!(login.cookie("issuer_csrf").is_some(), "a CSRF cookie");

    // The password, then the consent page: it names what the app asks for.
    let consent = browser.log_in(&login, "ada@example.com").await;
    assert_eq!(consent.status, 200, "{}", consent.html);
    let session_cookie = consent.cookie("issuer_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(
        consent.html.contains("See your email address"),
        "{}",
        consent.html
    );
    assert!(consent.html.contains("value=\"allow\"") && consent.html.contains("value=\"deny\""));

    // Approved: back to the app with the code, the state and the issuer (RFC 9207).
    let back = browser
        .submit(&consent, "/oauth2/authorize/consent", &[("decision", "allow")])
        .await;
    let location = back.location();
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
    let params = query(&location);
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], s.base);
    assert!(params["code"].len() >= 43, "at least 256 bits");

    // The app exchanges the code with its verifier.
    let resp = exchange(&s, APP, &params["code"]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid email notes:read");
    let access = tokens["access_token"].as_str().expect("access token");
    let claims = segment(access, 1);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["client_id"], APP);
    assert_eq!(claims["aud"], s.base);
    assert!(claims["sid"].is_string());

    let id = verify_id_token(&s, tokens["id_token"].as_str().expect("id_token"), APP).await;
    assert_eq!(id["sub"], user["id"]);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], "ada@example.com");
    assert_eq!(id["email_verified"], false);
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["auth_time"].as_i64().expect("auth_time") <= id["iat"].as_i64().expect("iat"));
    assert_eq!(
        id["at_hash"],
        token_issuer::tokens::at_hash(token_issuer::keys::Alg::Rs256, access)
    );
    assert!(
        id["sid"].is_string() && id["sid"] != claims["sid"],
        "the login session, not the token session"
    );

    // userinfo answers by scope.
    let info: Value = s
        .get_bearer("/oauth2/userinfo", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["sub"], user["id"]);
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], false);

    // The refresh token rotates, keeping the granted scopes; scopes cannot be widened.
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let refreshed: Value = refresh_grant(&s, APP, refresh, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(refreshed["scope"], "openid email notes:read");
    // Fewer scopes for one token (RFC 6749 §6); the session keeps them all.
    let refresh = refreshed["refresh_token"].as_str().expect("rotated");
    let narrowed: Value = refresh_grant(&s, APP, refresh, Some("openid"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(narrowed["scope"], "openid");
    assert_eq!(
        segment(narrowed["access_token"].as_str().expect("access"), 1)["scope"],
        "openid"
    );
    let refresh = narrowed["refresh_token"].as_str().expect("rotated");
    let resp = refresh_grant(&s, APP, refresh, Some("openid admin")).await;
    assert_eq!(resp.status(), 400, "never wider than granted");
    let refreshed: Value = refresh_grant(&s, APP, refresh, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        refreshed["scope"], "openid email notes:read",
        "a refused refresh changed nothing"
    );
    let refresh = refreshed["refresh_token"].as_str().expect("rotated").to_owned();

    // The same browser, again: no password. A native app (its loopback redirect proves
    // nothing about which program listens) is asked to be approved again (RFC 8252 §8.6).
    let again = browser.authorize(APP, &[("state", "second")]).await;
    assert!(!again.html.contains("name=\"password\""), "{}", again.html);
    assert!(again.html.contains("value=\"allow\""), "{}", again.html);
    let again = browser
        .submit(&again, "/oauth2/authorize/consent", &[("decision", "allow")])
        .await;
    assert_eq!(query(&again.location())["state"], "second");
    // prompt=login asks for the password anyway; max_age=0 too.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let page = browser.authorize(APP, &[extra]).await;
        assert!(
            page.html.contains("name=\"password\""),
            "{extra:?}: {}",
            page.html
        );
    }

    // RP-initiated logout with the ID token: the session ends, and the tokens it gave.
    let hint = tokens["id_token"].as_str().expect("id_token");
    let bye = browser
        .get(&format!(
            "{}/oauth2/logout?id_token_hint={hint}&post_logout_redirect_uri={AFTER_LOGOUT}&state=bye-1",
            s.base
        ))
        .await;
    assert_eq!(bye.location(), format!("{AFTER_LOGOUT}?state=bye-1"));
    assert!(bye
        .cookie("issuer_session")
        .expect("cleared")
        .contains("Max-Age=0"));
    let resp = refresh_grant(&s, APP, &refresh, None).await;
    assert_eq!(resp.status(), 400, "the refresh token ended with the login");
    assert_eq!(s.get_bearer("/oauth2/userinfo", access).await.status(), 401);
    let page = browser.authorize(APP, &[]).await;
    assert!(
        page.html.contains("name=\"password\""),
        "logged out: {}",
        page.html
    );
}

#[tokio::test]
async fn a_first_party_confidential_app_skips_consent_and_proves_itself() {
    let s = start().await;
    s.register("bo@example.com").await;
    let secret = s
        .register_client(NewClient {
            id: "portal".into(),
            grants: vec!["authorization_code".into()],
            scopes: vec!["notes:read".into()],
            redirect_uris: vec!["https://portal.example.com/cb".into()],
            first_party: true,
            ..Default::default()
        })
        .await
        .expect("a confidential client has a secret");
    let browser = Browser::new(&s);
    let page = browser
        .authorize(
            "portal",
            &[
                ("redirect_uri", "https://portal.example.com/cb"),
                ("scope", "notes:read"),
            ],
        )
        .await;
    let back = browser.log_in(&page, "bo@example.com").await;
    let location = back.location();
    assert!(
        location.starts_with("https://portal.example.com/cb?code="),
        "no consent page: {location}"
    );
    let code = query(&location)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://portal.example.com/cb"),
        ("code_verifier", VERIFIER),
    ];
    // Naming itself is not enough for a confidential client.
    let mut anonymous = form.to_vec();
    anonymous.push(("client_id", "portal"));
    let resp = s.post_form("/oauth2/token", &anonymous).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    // That attempt did not spend the code (the client never authenticated).
    let resp = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("portal", Some(&secret))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.expect("json");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no refresh_token grant, no refresh token"
    );
    assert!(tokens.get("id_token").is_none(), "no openid scope, no ID token");
    assert_eq!(tokens["scope"], "notes:read");
}

#[tokio::test]
async fn discovery_describes_the_code_flow() {
    let s = start().await;
    let doc = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/oauth2/authorize", s.base)
    );
    assert_eq!(doc["end_session_endpoint"], format!("{}/oauth2/logout", s.base));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(doc["scopes_supported"]
        .as_array()
        .expect("scopes")
        .contains(&"openid".into()));
    assert!(doc["id_token_signing_alg_values_supported"]
        .as_array()
        .expect("algs")
        .contains(&"RS256".into()));
    for claim in [
        "sub",
        "auth_time",
        "nonce",
        "at_hash",
        "sid",
        "email",
        "email_verified",
    ] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .expect("claims")
                .contains(&claim.into()),
            "{claim}"
        );
    }
    assert!(doc["grant_types_supported"]
        .as_array()
        .expect("grants")
        .contains(&"authorization_code".into()));
    // Public clients authenticate with none.
    assert!(doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("methods")
        .contains(&"none".into()));
}

#[tokio::test]
async fn oauth2_rs_completes_the_code_flow_with_pkce_and_refreshes() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse as _, TokenUrl,
    };
    let s = start().await;
    s.register("ivy@example.com").await;
    register_app(&s, APP, true).await;
    let client = BasicClient::new(ClientId::new(APP.into()))
        .set_auth_uri(AuthUrl::new(s.url("/oauth2/authorize")).expect("auth url"))
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("notes:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user logs in at the hosted page (a first-party app: no consent).
    let browser = Browser::new(&s);
    let login = browser.get(url.as_str()).await;
    let back = query(&browser.log_in(&login, "ivy@example.com").await.location());
    assert_eq!(&back["state"], state.secret());
    assert_eq!(back["iss"], s.base);

    let http = oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let tokens = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code exchanged");
    let scopes: Vec<&str> = tokens
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(scopes, ["openid", "notes:read"]);
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .request_async(&http)
        .await
        .expect("refreshed");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    // The same code again is refused, as the library reports it.
    let (_, verifier) = PkceCodeChallenge::new_random_sha256();
    let replay = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await;
    assert!(
        matches!(&replay, Err(oauth2::RequestTokenError::ServerResponse(e)) if e.error().as_ref() == "invalid_grant"),
        "{replay:?}"
    );
}

#[tokio::test]
async fn an_app_may_ask_for_eddsa_id_tokens() {
    let s = crate::common::start_with(&[("ISSUER_SIGNING_ALG", "EdDSA")]).await;
    s.register("max@example.com").await;
    s.register_client(NewClient {
        id: "ed-app".into(),
        grants: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        redirect_uris: vec![REDIRECT.into()],
        public: true,
        first_party: true,
        id_token_alg: Some("EdDSA".into()),
        ..Default::default()
    })
    .await;
    let browser = Browser::new(&s);
    let page = browser.authorize("ed-app", &[("scope", "openid")]).await;
    let code = query(&browser.log_in(&page, "max@example.com").await.location())["code"].clone();
    let tokens: Value = exchange(&s, "ed-app", &code).await.json().await.expect("json");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    assert_eq!(segment(id_token, 0)["alg"], "EdDSA");
    let claims = verify_id_token(&s, id_token, "ed-app").await;
    // Ed25519's at_hash is the left half of SHA-512 (OpenID Connect Core errata).
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(
        claims["at_hash"],
        token_issuer::tokens::at_hash(token_issuer::keys::Alg::EdDsa, access)
    );
    assert_eq!(claims["at_hash"].as_str().expect("at_hash").len(), 43);
}

#[tokio::test]
async fn the_hosted_pages_carry_the_operators_brand() {
    let s = crate::common::start_with(&[
        ("ISSUER_LOGIN_PRODUCT_NAME", "Acme <Accounts>"),
        ("ISSUER_LOGIN_LOGO_URL", "https://cdn.acme.example/logo.svg"),
        ("ISSUER_LOGIN_ACCENT_COLOR", "#AA3300"),
    ])
    .await;
    register_app(&s, APP, false).await;
    let page = Browser::new(&s).authorize(APP, &[]).await;
    assert!(
        page.html
            .contains("<p class=\"product\">Acme &lt;Accounts&gt;</p>"),
        "{}",
        page.html
    );
    assert!(page
        .html
        .contains("<title>Sign in – Acme &lt;Accounts&gt;</title>"));
    assert!(page.html.contains("src=\"https://cdn.acme.example/logo.svg\""));
    assert!(page.html.contains("--accent:#aa3300"));
    let csp = page.headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("img-src https://cdn.acme.example;"), "{csp}");
}
