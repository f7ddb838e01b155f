// openid-client, unchanged, logs a user in with the authorization code, PKCE (S256) and
// OpenID Connect against token-issuer, and validates what it gets itself: the iss of the
// authorization response (RFC 9207), state, the ID token (signature from the JWKS, iss, aud,
// exp, nonce). Then userinfo, a refresh, and RP-initiated logout. The user's part (the login
// form) is played by plain fetch with a cookie, as a browser would post it.
// Usage: node openid_client_code.mjs ISSUER CLIENT_ID REDIRECT_URI POST_LOGOUT_URI EMAIL PASSWORD
import * as client from 'openid-client';

const [issuer, clientId, redirectUri, postLogout, email, password] = process.argv.slice(2);
const fail = (message) => { console.error(`openid-client (code): ${message}`); process.exit(1); };
const options = { execute: [client.allowInsecureRequests] };
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), options);

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});

// The browser: keeps the issuer's cookies, posts the page's form with its hidden fields.
const cookies = new Map();
const browse = async (url, form) => {
  const response = await fetch(url, {
    method: form ? 'POST' : 'GET',
    redirect: 'manual',
    headers: {
      cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    body: form ? new URLSearchParams(form) : undefined,
  });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const [name, value] = pair.split('=');
    cookies.set(name, value);
  }
  return { status: response.status, location: response.headers.get('location'), html: await response.text() };
};
const hidden = (html) => [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)]
  .map(([, name, value]) => [name, value.replaceAll('&quot;', '"').replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&')]);

let page = await browse(authorizationUrl);
if (!page.html.includes('name="password"')) fail(`no login page: ${page.status}`);
page = await browse(`${issuer}/oauth2/authorize/login`, [...hidden(page.html), ['email', email], ['password', password]]);
if (page.html.includes('value="allow"')) {
  page = await browse(`${issuer}/oauth2/authorize/consent`, [...hidden(page.html), ['decision', 'allow']]);
}
if (page.status !== 303 || !page.location?.startsWith(redirectUri)) fail(`no redirect back: ${page.status} ${page.html.slice(0, 300)}`);

const tokens = await client.authorizationCodeGrant(config, new URL(page.location), {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
if (claims.email !== email || !claims.sid || !claims.auth_time) fail(`ID token claims ${JSON.stringify(claims)}`);
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
if (info.email !== email) fail(`userinfo ${JSON.stringify(info)}`);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
if (!refreshed.access_token || refreshed.refresh_token === tokens.refresh_token) fail('the refresh did not rotate');

// A tampered iss in the authorization response is caught by the library (mix-up defence).
const forged = new URL(page.location);
forged.searchParams.set('iss', 'https://attacker.example');
try {
  await client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  fail('a response naming another issuer was accepted');
} catch (e) {
  if (!String(e.cause?.message).includes('"iss"')) fail(`unexpected error for a wrong iss: ${e.message} ${e.cause}`);
}

const logout = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: postLogout,
  state: 'bye',
});
const bye = await browse(logout.href);
if (bye.status !== 303 || bye.location !== `${postLogout}?state=bye`) fail(`logout: ${bye.status} ${bye.location}`);
try {
  await client.refreshTokenGrant(config, refreshed.refresh_token);
  fail('the refresh token outlived the logout');
} catch (e) {
  if (e.error !== 'invalid_grant') fail(`after logout: ${e.error ?? e.message}`);
}
console.log('openid-client authorization_code: PKCE, ID token, userinfo, refresh, logout ok');
