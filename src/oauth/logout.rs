//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, whether
//! the request proves it comes from a session's own client (`id_token_hint`), and where the
//! browser may go afterwards — only to a URI the client registered.

use super::{redirect, AuthorizeError, OAuth, OAuthError};
use crate::oauth::FormParams;

const PARAMETERS: [&str; 4] = ["id_token_hint", "client_id", "post_logout_redirect_uri", "state"];

#[derive(Debug)]
pub struct LogoutRequest {
    /// The login session the `id_token_hint` was issued in.
    pub hint_sid: Option<String>,
    /// Where to send the browser afterwards (with `state`), if the client asked.
    pub location: Option<String>,
    /// The parameters as received, for the confirmation form.
    pub fields: Vec<(&'static str, String)>,
}

impl OAuth {
    pub async fn logout_request(&self, params: &FormParams) -> Result<LogoutRequest, AuthorizeError> {
        let page = |why: &str| AuthorizeError::Page(why.to_owned());
        let hint = match params.get("id_token_hint") {
            Some(token) => Some(self.id_tokens.verify_hint(token).map_err(|e| {
                tracing::info!(reason = %e, "logout: id_token_hint refused");
                page("the id_token_hint is not an ID token of this issuer")
            })?),
            None => None,
        };
        let client_id = match (params.get("client_id"), hint.as_ref().map(|h| h.aud.as_str())) {
            (Some(a), Some(b)) if a != b => {
                return Err(page("client_id is not the id_token_hint's audience"))
            }
            (named, from_hint) => named.or(from_hint),
        };
        let location = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let client_id = client_id
                    .ok_or_else(|| page("post_logout_redirect_uri needs client_id or id_token_hint"))?;
                let client = self.clients.find(client_id).await.map_err(OAuthError::from)?;
                if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)) {
                    return Err(page(
                        "the post_logout_redirect_uri is not registered for this client",
                    ));
                }
                Some(match params.get("state") {
                    Some(state) => redirect::with_query(uri, &[("state", state)]),
                    None => uri.to_owned(),
                })
            }
        };
        Ok(LogoutRequest {
            hint_sid: hint.and_then(|h| h.sid),
            location,
            fields: params.pick(&PARAMETERS),
        })
    }
}
