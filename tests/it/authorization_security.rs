//! Attacks on the authorization-code flow, each one refused: open redirects, PKCE downgrade,
//! code replay and injection, mix-up, CSRF, clickjacking, session fixation and guessing.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use token_issuer::oauth::clients::NewClient;
use token_issuer::testkit::{retry_after, PASSWORD};

use crate::authorization_code::{
    challenge, exchange, query, refresh_grant, register_app, Browser, APP, CALLBACK, VERIFIER,
};
use crate::common::{start, start_with};

/// An error page of the issuer's: no redirect, whatever the request asked.
fn assert_error_page(page: &crate::authorization_code::Page, what: &str) {
    assert_eq!(page.status, 400, "{what}: {}", page.html);
    assert!(!page.headers.contains_key("location"), "{what} must not redirect");
    assert!(page.headers["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/html"));
}

#[tokio::test]
async fn requests_that_cannot_be_trusted_get_an_error_page_never_a_redirect() {
    let s = start().await;
    register_app(&s, APP, false).await;
    s.register_client(NewClient {
        id: "web".into(),
        grants: vec!["authorization_code".into()],
        redirect_uris: vec!["https://app.example.com/callback".into()],
        public: true,
        ..Default::default()
    })
    .await;
    let browser = Browser::new(&s);
    assert_error_page(&browser.authorize("nobody", &[]).await, "unknown client");
    assert_error_page(&browser.authorize("", &[]).await, "no client");
    assert_error_page(
        &browser.authorize(APP, &[("redirect_uri", "")]).await,
        "no redirect_uri",
    );
    for evil in [
        "https://evil.example.com/callback",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback?next=https://evil.example.com",
        "https://app.example.com@evil.example.com/callback",
        "https://app.example.com.evil.example.com/callback",
        "https://app.example.com:8443/callback",
        "http://app.example.com/callback",
        "https://app.example.com/callback#fragment",
        "https://app.example.com/CALLBACK",
    ] {
        let page = browser.authorize("web", &[("redirect_uri", evil)]).await;
        assert_error_page(&page, evil);
    }
    // A loopback redirect may change its port, nothing else.
    for evil in [
        "http://127.0.0.1:5000/other",
        "http://127.0.0.1:5000@evil.example.com/callback",
        "http://localhost:5000/callback",
    ] {
        assert_error_page(&browser.authorize(APP, &[("redirect_uri", evil)]).await, evil);
    }
    let page = browser
        .authorize(APP, &[("redirect_uri", "http://127.0.0.1:5000/callback")])
        .await;
    assert_eq!(page.status, 200, "another loopback port is fine");
    // A repeated parameter is ambiguous: refused before anything is trusted.
    let page = browser
        .get(&format!(
            "{}/oauth2/authorize?client_id={APP}&client_id=web",
            s.base
        ))
        .await;
    assert_error_page(&page, "repeated client_id");
}

#[tokio::test]
async fn other_errors_go_back_to_the_client_with_state_and_iss() {
    let s = start().await;
    s.register("cy@example.com").await;
    register_app(&s, APP, false).await;
    let browser = Browser::new(&s);
    // error_description never echoes what the request said (RFC 6749 §4.1.2.1).
    let page = browser
        .authorize(APP, &[("response_type", "tok\u{e9}n\"<x>")])
        .await;
    let back = query(&page.location());
    assert_eq!(back["error"], "unsupported_response_type");
    assert!(back["error_description"]
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
    assert!(!back["error_description"].contains("<x>"));
    let cases: &[(&[(&str, &str)], &str)] = &[
        // PKCE is required, and S256 only: no downgrade to plain or to none.
        (
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge", "short")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("prompt", "none")], "login_required"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "soon")], "invalid_request"),
        (&[("request", "eyJ")], "request_not_supported"),
    ];
    for (extra, error) in cases {
        let page = browser.authorize(APP, extra).await;
        let back = query(&page.location());
        assert_eq!(back["error"], *error, "{extra:?}");
        assert_eq!(back["state"], "st-123", "{extra:?}");
        assert_eq!(back["iss"], s.base, "{extra:?}");
        assert!(back.contains_key("error_description"));
        assert!(!back.contains_key("code"));
    }
    // Logged in, but the app was never approved: prompt=none cannot ask.
    let login = browser.authorize(APP, &[]).await;
    let consent = browser.log_in(&login, "cy@example.com").await;
    let page = browser.authorize(APP, &[("prompt", "none")]).await;
    assert_eq!(query(&page.location())["error"], "consent_required");
    // Denied on the consent page.
    let back = browser
        .submit(&consent, "/oauth2/authorize/consent", &[("decision", "deny")])
        .await;
    let back = query(&back.location());
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["iss"], s.base);
}

fn code_form<'a>(
    client: &'a str,
    code: &'a str,
    redirect: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ]
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_code_is_spent_once_by_its_client_its_redirect_uri_and_its_verifier() {
    let s = start().await;
    s.register("di@example.com").await;
    register_app(&s, APP, true).await;
    register_app(&s, "other-app", true).await;
    let browser = Browser::new(&s);

    // Replay: the second exchange fails and ends what the first one got.
    let code = browser.code_for(APP, "di@example.com").await;
    let tokens: Value = exchange(&s, APP, &code).await.json().await.expect("json");
    assert_eq!(
        error_of(exchange(&s, APP, &code).await).await,
        (400, "invalid_grant".into())
    );
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(
        s.get_bearer("/oauth2/userinfo", access).await.status(),
        401,
        "revoked by the replay"
    );
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let resp = refresh_grant(&s, APP, refresh, None).await;
    assert_eq!(error_of(resp).await, (400, "invalid_grant".into()));

    // Two exchanges at once: exactly one wins.
    let code = browser.code_for(APP, "di@example.com").await;
    let (a, b) = tokio::join!(exchange(&s, APP, &code), exchange(&s, APP, &code));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);

    // Each binding is checked, and a failed try spends the code.
    let binding_cases = [
        (
            "another client (code injection)",
            code_form("other-app", "", CALLBACK, VERIFIER),
        ),
        (
            "another redirect URI",
            code_form(APP, "", "http://127.0.0.1:9999/callback", VERIFIER),
        ),
        (
            "another verifier",
            code_form(
                APP,
                "",
                CALLBACK,
                "another-verifier-of-at-least-43-characters-000000",
            ),
        ),
        (
            "the challenge as verifier (plain)",
            code_form(APP, "", CALLBACK, ""),
        ),
    ];
    for (what, mut form) in binding_cases {
        let code = browser.code_for(APP, "di@example.com").await;
        let challenge = challenge(VERIFIER);
        form[2].1 = &code;
        if form[4].1.is_empty() {
            form[4].1 = &challenge;
        }
        let resp = s.post_form("/oauth2/token", &form).await;
        assert_eq!(error_of(resp).await, (400, "invalid_grant".into()), "{what}");
        // The code's own client spends it by a wrong try; another client cannot.
        let expected = if form[1].1 == APP { 400 } else { 200 };
        assert_eq!(exchange(&s, APP, &code).await.status(), expected, "{what}");
    }
    // No verifier at all is a malformed request.
    let code = browser.code_for(APP, "di@example.com").await;
    let mut form = code_form(APP, &code, CALLBACK, VERIFIER);
    form.pop();
    assert_eq!(
        error_of(s.post_form("/oauth2/token", &form).await).await,
        (400, "invalid_request".into())
    );

    // A code lives 60 seconds.
    let code = browser.code_for(APP, "di@example.com").await;
    s.advance(Duration::from_secs(61));
    assert_eq!(
        error_of(exchange(&s, APP, &code).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_code_is_single_use_across_instances() {
    let s = start().await;
    let sibling = s.sibling(&[]).await;
    s.register("ed@example.com").await;
    register_app(&s, APP, true).await;
    let code = Browser::new(&s).code_for(APP, "ed@example.com").await;
    let (a, b) = tokio::join!(exchange(&s, APP, &code), exchange(&sibling, APP, &code));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[tokio::test]
async fn the_login_form_resists_csrf_fixation_clickjacking_and_guessing() {
    let s = start_with(&[("ISSUER_LOGIN_MAX_FAILURES", "3")]).await;
    s.register("fay@example.com").await;
    register_app(&s, APP, true).await;
    let browser = Browser::new(&s);
    let login = browser.authorize(APP, &[]).await;

    // The page allows its own stylesheet (by hash), no script, no framing.
    let csp = login.headers["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; frame-ancestors 'none'; "),
        "the contract's, then more: {csp}"
    );
    assert!(csp.contains("form-action 'self' http://127.0.0.1:*"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    let style = login
        .html
        .split("<style>")
        .nth(1)
        .and_then(|r| r.split("</style>").next())
        .expect("style");
    use base64::Engine as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert_eq!(login.headers["x-frame-options"], "DENY");

    // CSRF: a form without the browser's token, or from a browser without the cookie.
    let mut forged = login.hidden_fields();
    forged.retain(|(k, _)| k != "csrf");
    forged.push(("csrf".into(), "A".repeat(43)));
    forged.extend([
        ("email".into(), "fay@example.com".into()),
        ("password".into(), PASSWORD.into()),
    ]);
    let resp = browser
        .http
        .post(format!("{}/oauth2/authorize/login", s.base))
        .form(&forged)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);
    let stranger = Browser::new(&s);
    let resp = stranger
        .submit(
            &login,
            "/oauth2/authorize/login",
            &[("email", "fay@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        resp.status, 403,
        "another browser cannot post this browser's form"
    );

    // The same answer for an unknown email and a wrong password.
    let unknown = browser
        .submit(
            &login,
            "/oauth2/authorize/login",
            &[("email", "nobody@example.com"), ("password", PASSWORD)],
        )
        .await;
    let wrong = browser
        .submit(
            &login,
            "/oauth2/authorize/login",
            &[("email", "fay@example.com"), ("password", "not the password")],
        )
        .await;
    assert_eq!((unknown.status, wrong.status), (200, 200));
    assert!(
        unknown.html.contains("Wrong email or password.") && wrong.html.contains("Wrong email or password.")
    );
    assert!(unknown.cookie("issuer_session").is_none());
    // The per-IP budget: the third failure used it up.
    let _ = browser
        .submit(
            &login,
            "/oauth2/authorize/login",
            &[("email", "fay@example.com"), ("password", "wrong again")],
        )
        .await;
    let resp = browser
        .http
        .post(format!("{}/oauth2/authorize/login", s.base))
        .form(&{
            let mut form = login.hidden_fields();
            form.extend([
                ("email".into(), "fay@example.com".into()),
                ("password".into(), PASSWORD.into()),
            ]);
            form
        })
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 429, "even the right password waits");
    assert!(retry_after(&resp).is_some_and(|secs| secs > 0));
    assert!(resp.text().await.expect("page").contains("Too many attempts"));
}

#[tokio::test]
async fn a_login_always_makes_a_new_session_and_ending_it_ends_its_tokens() {
    let s = start().await;
    s.register("gil@example.com").await;
    let access = s.login("gil@example.com").await["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    register_app(&s, APP, true).await;
    let browser = Browser::new(&s);
    // Fixation: a session id planted in the browser is never the one it logs in with.
    let planted = "p".repeat(43);
    let jar_cookie = format!("issuer_session={planted}");
    let login = {
        let resp = browser
            .http
            .get(format!(
                "{}/oauth2/authorize?response_type=code&client_id={APP}&redirect_uri={CALLBACK}&code_challenge={}&code_challenge_method=S256",
                s.base,
                challenge(VERIFIER)
            ))
            .header("cookie", &jar_cookie)
            .send()
            .await
            .expect("get");
        let headers = resp.headers().clone();
        crate::authorization_code::Page {
            status: resp.status().as_u16(),
            headers,
            html: resp.text().await.expect("html"),
        }
    };
    let back = browser.log_in(&login, "gil@example.com").await;
    let first = back.cookie("issuer_session").expect("a session cookie");
    assert!(!first.contains(&planted));
    let code = query(&back.location())["code"].clone();
    let tokens: Value = exchange(&s, APP, &code).await.json().await.expect("json");
    // Logging in again (prompt=login) gives a new session id too, and keeps the user's tokens.
    let page = browser.authorize(APP, &[("prompt", "login")]).await;
    let back = browser.log_in(&page, "gil@example.com").await;
    let second = back.cookie("issuer_session").expect("a new session cookie");
    assert_ne!(first, second);
    let app_access = tokens["access_token"].as_str().expect("access");
    assert_eq!(s.get_bearer("/oauth2/userinfo", app_access).await.status(), 200);

    // logout-all (the account API) ends the browser's login too, and the app's tokens.
    let resp = s
        .with_bearer(reqwest::Method::POST, "/api/v1/auth/logout-all", &access, None)
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(s.get_bearer("/oauth2/userinfo", app_access).await.status(), 401);
    let page = browser.authorize(APP, &[]).await;
    assert!(page.html.contains("name=\"password\""), "logged out everywhere");

    // A logout without proof of the session asks first (no cross-site logout).
    let back = browser.log_in(&page, "gil@example.com").await;
    assert_eq!(back.status, 303);
    let confirm = browser.get(&format!("{}/oauth2/logout", s.base)).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.html.contains("Log out?"));
    let still = browser.authorize(APP, &[]).await;
    assert!(
        still.status == 200 && !still.html.contains("name=\"password\""),
        "still logged in until confirmed: {}",
        still.html
    );
    let done = browser.submit(&confirm, "/oauth2/logout", &[]).await;
    assert_eq!(done.status, 200);
    assert!(done.html.contains("You are logged out"));
    let page = browser.authorize(APP, &[]).await;
    assert!(page.html.contains("name=\"password\""));
    // Only a registered post-logout URI is followed.
    let page = browser
        .get(&format!(
            "{}/oauth2/logout?client_id={APP}&post_logout_redirect_uri=https://evil.example.com/",
            s.base
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(!page.headers.contains_key("location"));
}

#[tokio::test]
async fn a_disabled_or_erased_user_is_logged_out_of_the_browser() {
    let s = start().await;
    s.register("hal@example.com").await;
    register_app(&s, APP, true).await;
    let browser = Browser::new(&s);
    let _ = browser.code_for(APP, "hal@example.com").await;
    s.app
        .accounts
        .set_disabled("hal@example.com", true)
        .await
        .expect("disable");
    let page = browser.authorize(APP, &[]).await;
    assert!(
        page.html.contains("name=\"password\""),
        "a disabled user's login session is over"
    );
    s.app
        .accounts
        .set_disabled("hal@example.com", false)
        .await
        .expect("enable");
    let code = browser.code_for(APP, "hal@example.com").await;
    let tokens: Value = exchange(&s, APP, &code).await.json().await.expect("json");
    let app_access = tokens["access_token"].as_str().expect("access");
    assert_eq!(s.get_bearer("/oauth2/userinfo", app_access).await.status(), 200);
    // Erasure takes the login session (and its codes and tokens) with the user.
    let access = s.login("hal@example.com").await["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let resp = s
        .with_bearer(
            reqwest::Method::DELETE,
            "/api/v1/users/me",
            &access,
            Some(serde_json::json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(s.get_bearer("/oauth2/userinfo", app_access).await.status(), 401);
    let page = browser.authorize(APP, &[]).await;
    assert!(
        page.html.contains("name=\"password\""),
        "an erased user's login session is over"
    );
}

#[tokio::test]
async fn a_native_app_is_never_approved_silently_but_a_web_app_is() {
    let s = start().await;
    s.register("jo@example.com").await;
    // First-party, yet a loopback redirect: any local program could be listening.
    register_app(&s, APP, true).await;
    s.register_client(NewClient {
        id: "web".into(),
        grants: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        redirect_uris: vec!["https://web.example.com/cb".into()],
        public: true,
        ..Default::default()
    })
    .await;
    let browser = Browser::new(&s);
    // Typing the password is the user's consent to this login.
    let _ = browser.code_for(APP, "jo@example.com").await;
    let page = browser.authorize(APP, &[]).await;
    assert!(
        page.html.contains("value=\"allow\""),
        "asked again: {}",
        page.html
    );
    let page = browser.authorize(APP, &[("prompt", "none")]).await;
    assert_eq!(query(&page.location())["error"], "consent_required");
    // An https redirect proves the app: once approved, it is approved.
    let web = [
        ("redirect_uri", "https://web.example.com/cb"),
        ("scope", "openid"),
    ];
    let page = browser.authorize("web", &web).await;
    let back = browser
        .submit(&page, "/oauth2/authorize/consent", &[("decision", "allow")])
        .await;
    assert!(back.location().starts_with("https://web.example.com/cb?code="));
    let again = browser.authorize("web", &web).await;
    assert!(
        again.location().starts_with("https://web.example.com/cb?code="),
        "silent"
    );
}

#[tokio::test]
async fn apps_may_post_to_authorize_and_logout_and_get_the_browsers_cookies_back() {
    let s = start().await;
    s.register("kim@example.com").await;
    register_app(&s, APP, true).await;
    let browser = Browser::new(&s);
    let code = browser.code_for(APP, "kim@example.com").await;
    let tokens: Value = exchange(&s, APP, &code).await.json().await.expect("json");
    // A form posted from the app's own site carries no Lax cookie: the issuer answers with
    // the same request as a top-level GET, which does.
    let challenge = challenge(VERIFIER);
    let form = [
        ("response_type", "code"),
        ("client_id", APP),
        ("redirect_uri", CALLBACK),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = stranger
        .post(s.url("/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("/oauth2/authorize?"), "{location}");
    assert_eq!(query(&location)["client_id"], APP);
    // RP-initiated logout by POST: the same.
    let hint = tokens["id_token"].as_str().expect("id_token");
    let resp = stranger
        .post(s.url("/oauth2/logout"))
        .form(&[("id_token_hint", hint), ("state", "s1")])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("/oauth2/logout?"), "{location}");
    let page = browser.get(&format!("{}{location}", s.base)).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("You are logged out"), "{}", page.html);
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(s.get_bearer("/oauth2/userinfo", access).await.status(), 401);
}

#[tokio::test]
async fn userinfo_answers_an_apps_token_only_with_openid() {
    let s = start().await;
    s.register("lee@example.com").await;
    register_app(&s, APP, true).await;
    let browser = Browser::new(&s);
    let page = browser.authorize(APP, &[("scope", "notes:read")]).await;
    let back = browser.log_in(&page, "lee@example.com").await;
    let code = query(&back.location())["code"].clone();
    let tokens: Value = exchange(&s, APP, &code).await.json().await.expect("json");
    assert!(tokens.get("id_token").is_none());
    let resp = s
        .get_bearer(
            "/oauth2/userinfo",
            tokens["access_token"].as_str().expect("access"),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .expect("challenge")
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("openid"),
        "{challenge}"
    );
}
