// openid-client, unchanged, against token-issuer: discovery, client_credentials with
// client_secret_basic and client_secret_post, introspection, revocation.
// Usage: node openid_client.mjs ISSUER CLIENT_ID CLIENT_SECRET AUDIENCE SCOPE
import * as client from 'openid-client';

const [issuer, clientId, secret, audience, scope] = process.argv.slice(2);
const fail = (message) => { console.error(`openid-client: ${message}`); process.exit(1); };
// Plain HTTP on loopback: the library refuses it unless told.
const options = { execute: [client.allowInsecureRequests] };

for (const [name, auth] of [['client_secret_basic', client.ClientSecretBasic(secret)],
                            ['client_secret_post', client.ClientSecretPost(secret)]]) {
  const config = await client.discovery(new URL(issuer), clientId, undefined, auth, options);
  const tokens = await client.clientCredentialsGrant(config, { scope, resource: audience });
  if (tokens.token_type.toLowerCase() !== 'bearer' || tokens.refresh_token) fail(`${name}: unexpected token response`);
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  if (claims.sub !== clientId || claims.aud !== audience || claims.scope !== scope) fail(`${name}: claims ${JSON.stringify(claims)}`);

  const live = await client.tokenIntrospection(config, tokens.access_token);
  if (live.active !== true || live.client_id !== clientId) fail(`${name}: introspection ${JSON.stringify(live)}`);
  await client.tokenRevocation(config, tokens.access_token);
  const revoked = await client.tokenIntrospection(config, tokens.access_token);
  if (revoked.active !== false || Object.keys(revoked).length !== 1) fail(`${name}: after revocation ${JSON.stringify(revoked)}`);

  // A wrong secret is refused as RFC 6749 says.
  const wrong = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic('wrong'), options);
  try {
    await client.clientCredentialsGrant(wrong, { scope });
    fail(`${name}: a wrong secret was accepted`);
  } catch (e) {
    // The 401 carries a Basic challenge, which openid-client surfaces as its own error type.
    const error = e.error ?? (await e.response?.json().catch(() => ({})))?.error;
    if (error !== 'invalid_client' || (e.status ?? e.response?.status) !== 401) fail(`${name}: wrong secret gave ${error ?? e}`);
  }
  console.log(`openid-client ${name}: token, introspection, revocation ok`);
}
