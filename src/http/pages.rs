//! The hosted pages (login, consent, logout, errors): small server-rendered HTML that needs no
//! JavaScript. Branded by settings (product name, logo, accent colour), never by patching the
//! binary. Each page carries a CSP that allows exactly what it uses: its one stylesheet (by
//! hash), the logo's origin, and form posts to the issuer and to where the flow continues.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::oauth::redirect::csp_source;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root{--accent:ACCENT;color-scheme:light}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
background:#f3f4f6;color:#111827;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{width:100%;max-width:26rem;margin:1rem;padding:2rem;background:#fff;border-radius:.75rem;
box-shadow:0 1px 3px rgba(0,0,0,.12),0 8px 24px rgba(0,0,0,.06)}
.logo{display:block;max-height:3rem;max-width:12rem;margin:0 0 1rem}
.product{margin:0 0 .25rem;font-size:.875rem;font-weight:600;color:#4b5563;letter-spacing:.02em}
h1{margin:0 0 .5rem;font-size:1.5rem;line-height:1.25}
.lead{margin:0 0 1.25rem;color:#374151}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input[type=email],input[type=password]{width:100%;padding:.625rem .75rem;font:inherit;
border:1px solid #9ca3af;border-radius:.375rem}
input:focus,button:focus{outline:3px solid var(--accent);outline-offset:2px}
button{width:100%;margin-top:1.5rem;padding:.7rem 1rem;font:inherit;font-weight:600;color:#fff;
background:var(--accent);border:0;border-radius:.375rem;cursor:pointer}
button.secondary{color:#111827;background:#e5e7eb;margin-top:.75rem}
.error{margin:0 0 1rem;padding:.75rem 1rem;color:#7f1d1d;background:#fef2f2;
border:1px solid #fca5a5;border-radius:.375rem}
.scopes{margin:0 0 1rem;padding-left:1.25rem}
.who{color:#4b5563;font-size:.875rem}
a{color:var(--accent)}
"#;

/// The pages' branding and what their CSP allows, fixed at start.
pub struct Pages {
    product: String,
    logo: Option<String>,
    css: String,
    /// `style-src` for the one inline stylesheet.
    style_source: String,
    /// `img-src`: the logo's origin, or nothing.
    img_source: String,
    /// The issuer URL's path (`/auth` in `https://example.com/auth`): forms post below it.
    base_path: String,
}

/// One page: its title, its body (already HTML), and where its form may lead.
pub struct Page<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub body: String,
    /// The origin a form on this page ends up at besides the issuer (the client's redirect
    /// URI: browsers check form-action along the redirects that follow a post).
    pub continues_to: Option<&'a str>,
}

impl Pages {
    pub fn new(settings: &Settings) -> Self {
        let css = CSS.replace("ACCENT", &settings.login_accent_color);
        let style_source = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(css.as_bytes())));
        let img_source = settings
            .login_logo_url
            .as_deref()
            .and_then(csp_source)
            .unwrap_or_else(|| "'none'".to_owned());
        let after_scheme = settings.url.split_once("://").map_or("", |(_, rest)| rest);
        let base_path = after_scheme
            .find('/')
            .map_or("", |i| &after_scheme[i..])
            .to_owned();
        Self {
            base_path,
            product: settings.login_product_name.clone(),
            logo: settings.login_logo_url.clone(),
            css,
            style_source,
            img_source,
        }
    }

    pub fn product(&self) -> &str {
        &self.product
    }

    /// Where a form posts `path` to: below the issuer URL's path, as a proxy forwards it.
    pub fn action(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// The HTML response of a page, never cached, never framed.
    pub fn render(&self, page: Page<'_>) -> Response {
        let logo = self.logo.as_deref().map_or_else(String::new, |url| {
            format!(
                r#"<img class="logo" src="{}" alt="{}">"#,
                esc(url),
                esc(&self.product)
            )
        });
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title} – {product}</title>\n<style>{css}</style>\n</head>\n<body>\n<main>\n\
             {logo}<p class=\"product\">{product}</p>\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
            title = esc(page.title),
            product = esc(&self.product),
            css = self.css,
            body = page.body,
        );
        let form_action = match page.continues_to.and_then(csp_source) {
            Some(source) => format!("'self' {source}"),
            None => "'self'".to_owned(),
        };
        // The contract's policy, then what a page needs besides.
        let csp = format!(
            "default-src 'none'; frame-ancestors 'none'; style-src {}; img-src {}; \
             form-action {form_action}; base-uri 'none'",
            self.style_source, self.img_source
        );
        let mut response = (page.status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        response
    }

    /// The issuer's own error page: for requests that cannot be sent back to a client.
    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        self.render(Page {
            status,
            title: "Something went wrong",
            body: format!(
                "<p class=\"error\" role=\"alert\">{}</p>\n<p>Return to the application and try again.</p>",
                esc(message)
            ),
            continues_to: None,
        })
    }
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        esc(name),
        esc(value)
    )
}

/// What a scope lets the client do, in words for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account id)".to_owned(),
        "email" => "See your email address".to_owned(),
        other => format!("Use {} on your behalf", esc(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
