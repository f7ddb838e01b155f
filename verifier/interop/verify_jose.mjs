// Verifies a token-issuer access token offline with jose's remote JWKS, as a Node service would.
//   node verify_jose.mjs ISSUER AUDIENCE TOKEN
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, token] = process.argv.slice(2);
const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' });
console.log(`jose: valid ${protectedHeader.alg} token of ${payload.sub}`);
