//! The browser's side of the authorization-code flow: `/oauth2/authorize` and its login and
//! consent forms, and `/oauth2/logout`. Cookies, CSRF and pages live here; what is allowed is
//! decided in `oauth`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::error::ErrorBody;
use super::extract::ClientIp;
use super::pages::{describe_scope, esc, hidden, Page};
use super::schema::{AuthorizationParams, ConsentForm, LoginForm, LogoutParams};
use crate::accounts::{AccountError, LoginSession, SessionError};
use crate::app::AppState;
use crate::oauth::{AuthorizationRequest, AuthorizeError, FormParams, OAuthError, Step};
use crate::ratelimit::Denied;
use crate::tokens::Secret;

/// The browser's cookies of this flow: read from the request, changes queued for the response.
struct Cookies {
    secure: bool,
    csrf: Option<String>,
    session: Option<String>,
    set: Vec<String>,
}

impl Cookies {
    fn read(app: &AppState, headers: &HeaderMap) -> Self {
        let secure = app.settings.issuer_is_https();
        let mut cookies = Self {
            secure,
            csrf: None,
            session: None,
            set: Vec::new(),
        };
        let (csrf_name, session_name) = (cookies.name("csrf"), cookies.name("session"));
        for pair in headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
        {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            // Our values are 43 base64url characters; anything else is not ours.
            if value.len() != 43
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                continue;
            }
            if name == csrf_name {
                cookies.csrf = Some(value.to_owned());
            } else if name == session_name {
                cookies.session = Some(value.to_owned());
            }
        }
        cookies
    }

    /// `__Host-` binds a cookie to this exact origin over https (no subdomain can set it).
    fn name(&self, what: &str) -> String {
        match self.secure {
            true => format!("__Host-issuer_{what}"),
            false => format!("issuer_{what}"),
        }
    }

    fn queue(&mut self, what: &str, value: &str, max_age: u64) {
        let secure = if self.secure { "; Secure" } else { "" };
        self.set.push(format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            self.name(what)
        ));
    }

    /// The browser's CSRF token (double-submit: a form must carry the cookie's value, which
    /// another site can neither read nor set), made now if it has none.
    fn csrf_token(&mut self) -> String {
        if let Some(token) = &self.csrf {
            return token.clone();
        }
        let token = Secret::generate().expose().to_owned();
        self.queue("csrf", &token, 24 * 3600);
        self.csrf = Some(token.clone());
        token
    }

    fn csrf_ok(&self, form: &FormParams) -> bool {
        match (&self.csrf, form.get("csrf")) {
            (Some(cookie), Some(sent)) => bool::from(cookie.as_bytes().ct_eq(sent.as_bytes())),
            _ => false,
        }
    }

    fn set_session(&mut self, value: &Secret, max_age: u64) {
        self.queue("session", value.expose(), max_age);
    }

    fn clear_session(&mut self) {
        self.queue("session", "", 0);
    }

    fn apply(self, mut response: Response) -> Response {
        for cookie in self.set {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

/// The live login session the browser's cookie names.
async fn login_session(app: &AppState, cookies: &Cookies) -> Result<Option<LoginSession>, Response> {
    match &cookies.session {
        None => Ok(None),
        Some(value) => app
            .oauth
            .login_sessions
            .find(value)
            .await
            .map_err(|e| server_error(app, &OAuthError::from(e))),
    }
}

fn server_error(app: &AppState, e: &OAuthError) -> Response {
    tracing::error!(error = %e, "authorization failed");
    let status = match e {
        OAuthError::Unavailable(_) | OAuthError::RateLimited(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    app.pages.error(
        status,
        "The service cannot complete the sign-in right now. Try again in a moment.",
    )
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        // Built from checked parts; a header it cannot be is a bug, not the user's.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A login-page problem shown above the form.
struct Problem {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

/// A form's hidden fields: the request it carries on, and the browser's CSRF token.
fn hidden_fields(fields: &[(&'static str, String)], cookies: &mut Cookies) -> String {
    let mut html: String = fields.iter().map(|(n, v)| hidden(n, v)).collect();
    html.push_str(&hidden("csrf", &cookies.csrf_token()));
    html
}

fn login_page(
    app: &AppState,
    request: &AuthorizationRequest,
    cookies: &mut Cookies,
    problem: Option<Problem>,
) -> Response {
    let fields = hidden_fields(&request.fields, cookies);
    let (status, retry_after, error, described) = match &problem {
        Some(p) => (
            p.status,
            p.retry_after,
            format!(
                "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>\n",
                esc(&p.message)
            ),
            " aria-describedby=\"form-error\"",
        ),
        None => (StatusCode::OK, None, String::new(), ""),
    };
    let email = request.login_hint.as_deref().map(esc).unwrap_or_default();
    let body = format!(
        "<p class=\"lead\">to continue to <strong>{client}</strong></p>\n{error}\
         <form method=\"post\" action=\"{action}\">\n{fields}\n\
         <label for=\"email\">Email</label>\n\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus value=\"{email}\"{described}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{described}>\n\
         <button type=\"submit\">Sign in</button>\n</form>",
        client = esc(&request.client.id),
        action = esc(&app.pages.action("/oauth2/authorize/login")),
    );
    let mut response = app.pages.render(Page {
        status,
        title: "Sign in",
        body,
        continues_to: Some(&request.redirect_uri),
    });
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn consent_page(
    app: &AppState,
    request: &AuthorizationRequest,
    email: &str,
    cookies: &mut Cookies,
) -> Response {
    let fields = hidden_fields(&request.fields, cookies);
    let scopes: String = match request.scopes.is_empty() {
        true => "<li>Know that you use it</li>".to_owned(),
        false => request
            .scopes
            .iter()
            .map(|s| format!("<li>{}</li>", describe_scope(s)))
            .collect(),
    };
    let body = format!(
        "<p class=\"lead\"><strong>{client}</strong> asks to:</p>\n<ul class=\"scopes\">{scopes}</ul>\n\
         <p class=\"who\">Signed in as {email}.</p>\n\
         <form method=\"post\" action=\"{action}\">\n{fields}\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n</form>",
        client = esc(&request.client.id),
        email = esc(email),
        action = esc(&app.pages.action("/oauth2/authorize/consent")),
    );
    app.pages.render(Page {
        status: StatusCode::OK,
        title: "Allow access?",
        body,
        continues_to: Some(&request.redirect_uri),
    })
}

/// The response for a step of the flow (or its error).
fn respond(app: &AppState, step: Result<Step, AuthorizeError>, mut cookies: Cookies) -> Response {
    let response = match step {
        Ok(Step::Login(request)) => login_page(app, &request, &mut cookies, None),
        Ok(Step::Consent(request, email)) => consent_page(app, &request, &email, &mut cookies),
        Ok(Step::Redirect(location)) => see_other(&location),
        Err(AuthorizeError::Redirect { location, error, .. }) => {
            tracing::info!(error, "authorization refused; sent back to the client");
            see_other(&location)
        }
        Err(AuthorizeError::Page(message)) => {
            tracing::info!(reason = %message, "authorization request refused");
            app.pages.error(StatusCode::BAD_REQUEST, &message)
        }
        Err(AuthorizeError::Server(e)) => server_error(app, &e),
    };
    cookies.apply(response)
}

/// A request refused before it reaches the flow, shown on the error page.
struct Refused(StatusCode, String);

impl Refused {
    fn page(self, app: &AppState) -> Response {
        app.pages.error(self.0, &self.1)
    }
}

fn parse(bytes: &[u8]) -> Result<FormParams, Refused> {
    FormParams::parse(bytes).map_err(|e| Refused(StatusCode::BAD_REQUEST, e.description().to_owned()))
}

/// A posted body as the extractor read it: too large or unreadable is the page's to say.
type Body = Result<Bytes, BytesRejection>;

/// The parameters of a posted form, and the form as it came.
fn form_body(headers: &HeaderMap, body: Body) -> Result<(FormParams, Bytes), Refused> {
    let body = body.map_err(|e| Refused(e.status(), "The form could not be read.".into()))?;
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The form was not sent as a form.".into(),
        ));
    }
    Ok((parse(&body)?, body))
}

/// A form posted by one of our pages: its parameters, once its CSRF token checks out.
fn posted_form(headers: &HeaderMap, body: Body, cookies: &Cookies) -> Result<FormParams, Refused> {
    let (form, _) = form_body(headers, body)?;
    if !cookies.csrf_ok(&form) {
        tracing::info!("form refused: CSRF token missing or wrong");
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "This form has expired or was not sent from this site. Go back to the application and sign in again."
                .into(),
        ));
    }
    Ok(form)
}

/// The authorization endpoint (RFC 6749 §4.1.1, PKCE with S256 required, OpenID Connect).
///
/// A browser comes here from an app. It gets the login page, or the consent page, or goes
/// straight back to the app's redirect URI with a `code` (or an `error`), `state` and `iss`.
/// A request whose client or redirect URI cannot be trusted gets the issuer's error page.
#[utoipa::path(get, path = "/oauth2/authorize", operation_id = "authorize", tag = "browser", params(AuthorizationParams),
    responses(
        (status = 200, description = "The login or consent page", content_type = "text/html"),
        (status = 303, description = "Back to the app: `code`, `state`, `iss` — or `error`, `error_description`, `state`, `iss`",
            headers(("Location" = String, description = "The app's redirect URI with the answer"))),
        (status = 400, description = "The client or redirect URI cannot be trusted: the issuer's error page", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "The database is unavailable, or the server is overloaded", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn authorize(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(refused) => return refused.page(&app),
    };
    start(&app, &headers, &params).await
}

/// The authorization endpoint, with the request as a form (OpenID Connect Core §3.1.2.1).
#[utoipa::path(post, path = "/oauth2/authorize", operation_id = "authorize_form", tag = "browser",
    request_body(content = AuthorizationParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The login or consent page", content_type = "text/html"),
        (status = 303, description = "Back to the app with a code or an error",
            headers(("Location" = String, description = "The app's redirect URI with the answer"))),
        (status = 400, description = "The issuer's error page", content_type = "text/html"),
        (status = 413, description = "The form is larger than `ISSUER_MAX_BODY_BYTES`", content_type = "text/html"),
        (status = 415, description = "Not a form", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "The database is unavailable, or the server is overloaded", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn authorize_post(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    as_get(&app, &headers, body, "/oauth2/authorize")
}

/// A form an app posts from its own site arrives without the browser's `SameSite=Lax`
/// cookies; the same request as a top-level GET has them. So a posted request is answered
/// with a 303 to the GET form of the endpoint, its parameters (re-encoded) in the query.
fn as_get(app: &AppState, headers: &HeaderMap, body: Body, path: &str) -> Response {
    let raw = match form_body(headers, body) {
        Ok((_, raw)) => raw,
        Err(refused) => return refused.page(app),
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(&raw))
        .finish();
    see_other(&format!("{}?{query}", app.pages.action(path)))
}

async fn start(app: &AppState, headers: &HeaderMap, params: &FormParams) -> Response {
    let cookies = Cookies::read(app, headers);
    let session = match login_session(app, &cookies).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let step = match app.oauth.authorization_request(params).await {
        Ok(request) => app.oauth.authorize(request, session.as_ref(), false).await,
        Err(e) => Err(e),
    };
    respond(app, step, cookies)
}

/// The hosted login form. The same defences as the JSON login (the per-IP budget, the
/// per-account back-off, the argon2 queue) and the same answer for an unknown email and a
/// wrong password. A success sets the login-session cookie and goes on with the request.
#[utoipa::path(post, path = "/oauth2/authorize/login", operation_id = "authorize_login", tag = "browser",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The login page again (wrong email or password), or the consent page", content_type = "text/html"),
        (status = 303, description = "Back to the app with a code or an error",
            headers(("Location" = String, description = "The app's redirect URI with the answer"))),
        (status = 400, description = "The issuer's error page, or the login page asking for both fields", content_type = "text/html"),
        (status = 403, description = "The CSRF token is missing or not this browser's, or the account is disabled", content_type = "text/html"),
        (status = 413, description = "The form is larger than `ISSUER_MAX_BODY_BYTES`", content_type = "text/html"),
        (status = 415, description = "Not a form", content_type = "text/html"),
        (status = 429, description = "Too many failed logins: the login page says when to retry", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "Unavailable or busy", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn login(
    State(app): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut cookies = Cookies::read(&app, &headers);
    let form = match posted_form(&headers, body, &cookies) {
        Ok(form) => form,
        Err(refused) => return refused.page(&app),
    };
    let request = match app.oauth.authorization_request(&form).await {
        Ok(request) => request,
        Err(e) => return respond(&app, Err(e), cookies),
    };
    let (Some(email), Some(password)) = (form.get("email"), form.get("password")) else {
        let problem = Problem {
            status: StatusCode::BAD_REQUEST,
            message: "Enter your email and password.".into(),
            retry_after: None,
        };
        let page = login_page(&app, &request, &mut cookies, Some(problem));
        return cookies.apply(page);
    };
    let user = match app.sessions.authenticate(email, password, ip).await {
        Ok(user) => user,
        Err(e) => {
            let problem = match e {
                SessionError::Account(AccountError::InvalidCredentials) => Problem {
                    status: StatusCode::OK,
                    message: "Wrong email or password.".into(),
                    retry_after: None,
                },
                SessionError::Account(AccountError::Disabled) => Problem {
                    status: StatusCode::FORBIDDEN,
                    message: "This account is disabled.".into(),
                    retry_after: None,
                },
                SessionError::Denied(Denied::Wait(wait)) => {
                    let secs = crate::accounts::throttle::retry_after_secs(wait);
                    Problem {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        message: format!("Too many attempts. Try again in {secs} seconds."),
                        retry_after: Some(secs),
                    }
                }
                SessionError::Account(AccountError::Busy) | SessionError::Denied(Denied::Unavailable(_)) => {
                    Problem {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        message: "The service is busy. Try again in a moment.".into(),
                        retry_after: Some(1),
                    }
                }
                other => return server_error(&app, &OAuthError::from(other)),
            };
            let page = login_page(&app, &request, &mut cookies, Some(problem));
            return cookies.apply(page);
        }
    };
    let previous = match login_session(&app, &cookies).await {
        Ok(previous) => previous,
        Err(page) => return page,
    };
    let login_sessions = &app.oauth.login_sessions;
    let (cookie, session) = match login_sessions.open(&user.id, previous.as_ref()).await {
        Ok(opened) => opened,
        Err(e) => return server_error(&app, &OAuthError::from(e)),
    };
    cookies.set_session(&cookie, login_sessions.ttl().as_secs());
    let step = app.oauth.authorize(request, Some(&session), true).await;
    respond(&app, step, cookies)
}

/// The consent form: the user's answer, `decision=allow` (the scopes are remembered) or
/// `deny` (`access_denied`).
#[utoipa::path(post, path = "/oauth2/authorize/consent", operation_id = "authorize_consent", tag = "browser",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The login page: the login session ended meanwhile", content_type = "text/html"),
        (status = 303, description = "Back to the app with a code, or `access_denied`",
            headers(("Location" = String, description = "The app's redirect URI with the answer"))),
        (status = 400, description = "The issuer's error page", content_type = "text/html"),
        (status = 403, description = "The CSRF token is missing or not this browser's", content_type = "text/html"),
        (status = 413, description = "The form is larger than `ISSUER_MAX_BODY_BYTES`", content_type = "text/html"),
        (status = 415, description = "Not a form", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "The database is unavailable, or the server is overloaded", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn consent(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let cookies = Cookies::read(&app, &headers);
    let form = match posted_form(&headers, body, &cookies) {
        Ok(form) => form,
        Err(refused) => return refused.page(&app),
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return app.pages.error(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let session = match login_session(&app, &cookies).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let step = match app.oauth.authorization_request(&form).await {
        // The login ended meanwhile (logout elsewhere, expiry): log in again.
        Ok(request) => match &session {
            Some(session) => app.oauth.decide(request, session, allow).await,
            None => Ok(Step::Login(Box::new(request))),
        },
        Err(e) => Err(e),
    };
    respond(&app, step, cookies)
}

/// RP-initiated logout: with an `id_token_hint` of the browser's login session, the session
/// (and every token it gave) ends at once; otherwise the user confirms first, so that no other
/// site can log them out. Afterwards only a registered `post_logout_redirect_uri` is followed.
#[utoipa::path(get, path = "/oauth2/logout", operation_id = "end_session", tag = "browser", params(LogoutParams),
    responses(
        (status = 200, description = "The confirmation page, or \"You are logged out\"", content_type = "text/html"),
        (status = 303, description = "To the registered post-logout redirect URI, with `state`",
            headers(("Location" = String, description = "The post-logout redirect URI"))),
        (status = 400, description = "An invalid hint or an unregistered redirect URI: the issuer's error page", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "The database is unavailable, or the server is overloaded", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn logout(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(refused) => return refused.page(&app),
    };
    end_session(&app, &headers, &params, false).await
}

/// RP-initiated logout as a form: the confirmation page's (with its CSRF token: the session
/// ends), or an app's (as `GET`).
#[utoipa::path(post, path = "/oauth2/logout", operation_id = "end_session_form", tag = "browser",
    request_body(content = LogoutParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page, or \"You are logged out\"", content_type = "text/html"),
        (status = 303, description = "To the registered post-logout redirect URI, with `state`",
            headers(("Location" = String, description = "The post-logout redirect URI"))),
        (status = 400, description = "The issuer's error page", content_type = "text/html"),
        (status = 403, description = "The CSRF token is not this browser's", content_type = "text/html"),
        (status = 413, description = "The form is larger than `ISSUER_MAX_BODY_BYTES`", content_type = "text/html"),
        (status = 415, description = "Not a form", content_type = "text/html"),
        (status = 500, description = "An error page carrying no detail", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 503, description = "The database is unavailable, or the server is overloaded", content((String = "text/html"), (ErrorBody = "application/json"))),
    ))]
pub async fn logout_post(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    // The confirmation page's form carries a CSRF token; an app's does not.
    let confirmation = body
        .as_ref()
        .is_ok_and(|raw| form_urlencoded::parse(raw).any(|(name, _)| name == "csrf"));
    if !confirmation {
        return as_get(&app, &headers, body, "/oauth2/logout");
    }
    let cookies = Cookies::read(&app, &headers);
    match posted_form(&headers, body, &cookies) {
        Ok(form) => end_session(&app, &headers, &form, true).await,
        Err(refused) => refused.page(&app),
    }
}

async fn end_session(app: &AppState, headers: &HeaderMap, params: &FormParams, confirmed: bool) -> Response {
    let mut cookies = Cookies::read(app, headers);
    let request = match app.oauth.logout_request(params).await {
        Ok(request) => request,
        Err(e) => return respond(app, Err(e), cookies),
    };
    let session = match login_session(app, &cookies).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    if let Some(session) = &session {
        let proven = request.hint_sid.as_deref() == Some(session.id.as_str());
        if !proven && !confirmed {
            let fields = hidden_fields(&request.fields, &mut cookies);
            let page = app.pages.render(Page {
                status: StatusCode::OK,
                title: "Log out?",
                body: format!(
                    "<p class=\"lead\">You will be logged out of {product} in this browser.</p>\n\
                     <form method=\"post\" action=\"{action}\">\n{fields}\n\
                     <button type=\"submit\">Log out</button>\n</form>",
                    product = esc(app.pages.product()),
                    action = esc(&app.pages.action("/oauth2/logout")),
                ),
                continues_to: request.location.as_deref(),
            });
            return cookies.apply(page);
        }
        if let Err(e) = app.oauth.login_sessions.end(session).await {
            return server_error(app, &OAuthError::from(e));
        }
    }
    if cookies.session.is_some() {
        cookies.clear_session();
    }
    let response = match &request.location {
        Some(location) => see_other(location),
        None => app.pages.render(Page {
            status: StatusCode::OK,
            title: "You are logged out",
            body: "<p class=\"lead\">You can close this window.</p>".to_owned(),
            continues_to: None,
        }),
    };
    cookies.apply(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_cookies_are_host_only_and_secure() {
        let mut cookies = Cookies {
            secure: true,
            csrf: None,
            session: None,
            set: Vec::new(),
        };
        cookies.set_session(&Secret::generate(), 600);
        let _ = cookies.csrf_token();
        cookies.clear_session();
        for cookie in &cookies.set {
            assert!(cookie.starts_with("__Host-issuer_"), "{cookie}");
            for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            assert!(
                !cookie.contains("Domain"),
                "__Host- cookies name no domain: {cookie}"
            );
        }
        assert!(cookies.set[0].contains("Max-Age=600"));
        assert!(cookies.set[2].contains("Max-Age=0"), "cleared");
    }
}
