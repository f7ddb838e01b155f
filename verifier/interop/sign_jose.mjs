// A foreign signer: jose makes a key pair, serves its public JWKS on 127.0.0.1:PORT, prints
// one signed access token on stdout, then serves until killed.
//   node sign_jose.mjs ALG PORT ISSUER AUDIENCE
import * as http from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, calculateJwkThumbprint } from 'jose';

const [alg, port, issuer, audience] = process.argv.slice(2);
const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
const jwk = await exportJWK(publicKey);
const kid = await calculateJwkThumbprint(jwk);
const body = JSON.stringify({ keys: [{ ...jwk, kid, alg, use: 'sig' }] });
http
  .createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(body);
  })
  .listen(Number(port), '127.0.0.1', async () => {
    const token = await new SignJWT({ client_id: 'interop', scope: 'read' })
      .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject('jose-user')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(crypto.randomUUID())
      .sign(privateKey);
    console.log(token);
  });
