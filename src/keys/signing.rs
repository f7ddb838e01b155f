//! A key parsed once into a ready signer, with its public JWK, JWS header and verifier.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Alg, KeyError, KeyRecord, KeyState};

const MIN_RSA_BITS: usize = 2048;

enum KeyPair {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// What a JWS is, which decides its `typ` header.
#[derive(Debug, Clone, Copy)]
pub enum JwsKind {
    /// `at+jwt` (RFC 9068).
    AccessToken,
    /// `JWT` (OpenID Connect).
    IdToken,
}

pub struct SigningKey {
    kid: String,
    alg: Alg,
    state: KeyState,
    pair: KeyPair,
    public_jwk: Value,
    /// base64url of `{"alg","kid","typ":"at+jwt"}`: the same for every access token this key
    /// signs.
    access_header: String,
    /// base64url of `{"alg","kid","typ":"JWT"}`, for ID tokens.
    id_header: String,
    /// The public key, parsed once: verifying a signature then costs only the signature.
    verifier: ParsedPublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The public members of a JWK in the order RFC 7638 hashes them, and its thumbprint.
fn thumbprint(members: &[(&str, &str)]) -> String {
    let canonical = members
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    B64.encode(Sha256::digest(format!("{{{canonical}}}")))
}

fn pkcs8_der(kid: &str, pem: &str) -> Result<pkcs8::SecretDocument, KeyError> {
    let (label, der) = pkcs8::SecretDocument::from_pem(pem)
        .map_err(|_| KeyError::invalid(kid, "private_key_pem is not PEM"))?;
    if label != "PRIVATE KEY" {
        return Err(KeyError::invalid(
            kid,
            format!("private_key_pem must be PKCS#8 (BEGIN PRIVATE KEY), not {label}"),
        ));
    }
    Ok(der)
}

struct ParsedKey {
    pair: KeyPair,
    jwk: Value,
    thumbprint: String,
    verifier: ParsedPublicKey,
}

/// The RFC 7638 thumbprint of a PKCS#8 private key's public part: the `kid` it must carry.
pub fn thumbprint_of(alg: Alg, pem: &str) -> Result<String, KeyError> {
    parse(alg, pem, "(new key)").map(|p| p.thumbprint)
}

fn parse(alg: Alg, pem: &str, kid: &str) -> Result<ParsedKey, KeyError> {
    let der = pkcs8_der(kid, pem)?;
    let unusable =
        |e: aws_lc_rs::error::KeyRejected| KeyError::invalid(kid, format!("public key unusable: {e}"));
    match alg {
        Alg::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| match e.description_() {
                "TooSmall" => KeyError::invalid(kid, format!("RSA key is weaker than {MIN_RSA_BITS} bits")),
                _ => KeyError::invalid(kid, format!("not an RSA PKCS#8 key ({e})")),
            })?;
            let public = pair.public_key();
            let verifier = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public.as_ref())
                .map_err(unusable)?;
            let n = public.modulus().big_endian_without_leading_zero().to_vec();
            let e = public.exponent().big_endian_without_leading_zero().to_vec();
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(KeyError::invalid(
                    kid,
                    format!("RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"),
                ));
            }
            let (n, e) = (B64.encode(n), B64.encode(e));
            Ok(ParsedKey {
                thumbprint: thumbprint(&[("e", &e), ("kty", "RSA"), ("n", &n)]),
                verifier,
                jwk: json!({"kty": "RSA", "n": n, "e": e}),
                pair: KeyPair::Rsa(pair),
            })
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8(der.as_bytes())
                .map_err(|e| KeyError::invalid(kid, format!("not an Ed25519 PKCS#8 key ({e})")))?;
            let verifier =
                ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref()).map_err(unusable)?;
            let x = B64.encode(pair.public_key().as_ref());
            Ok(ParsedKey {
                thumbprint: thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)]),
                verifier,
                jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                pair: KeyPair::Ed25519(pair),
            })
        }
    }
}

impl SigningKey {
    /// Parses and checks a record: strong key of the named algorithm, `kid` = its thumbprint.
    pub fn from_record(record: &KeyRecord) -> Result<Self, KeyError> {
        let kid = &record.kid;
        let parsed = parse(record.alg, record.private_key_pem.expose(), kid)?;
        if parsed.thumbprint != *kid {
            return Err(KeyError::invalid(
                kid,
                format!(
                    "kid does not match the key's RFC 7638 thumbprint {}",
                    parsed.thumbprint
                ),
            ));
        }
        let mut public_jwk = parsed.jwk;
        public_jwk["use"] = json!("sig");
        public_jwk["alg"] = json!(record.alg.as_str());
        public_jwk["kid"] = json!(kid);
        let header =
            |typ: &str| B64.encode(json!({"alg": record.alg.as_str(), "kid": kid, "typ": typ}).to_string());
        Ok(Self {
            kid: kid.clone(),
            alg: record.alg,
            state: record.state,
            pair: parsed.pair,
            public_jwk,
            access_header: header("at+jwt"),
            id_header: header("JWT"),
            verifier: parsed.verifier,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn state(&self) -> KeyState {
        self.state
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Whether `signature` is this key's, by its own algorithm, over `signed` (a JWS's
    /// `header.payload`).
    pub fn verifies(&self, signed: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify_sig(signed, signature).is_ok()
    }

    /// A compact JWS of `kind` over `payload` (already JSON). An RSA-2048 signature takes
    /// 0.25–0.95 ms on the machines of BENCHMARKS.md: call it off the async runtime.
    pub fn sign_jws(&self, kind: JwsKind, payload: &[u8]) -> Result<String, KeyError> {
        let header = match kind {
            JwsKind::AccessToken => &self.access_header,
            JwsKind::IdToken => &self.id_header,
        };
        let mut token = String::with_capacity(header.len() + payload.len() * 2 + 400);
        token.push_str(header);
        token.push('.');
        B64.encode_string(payload, &mut token);
        let signature = match &self.pair {
            KeyPair::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    token.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| KeyError::Sign)?;
                sig
            }
            KeyPair::Ed25519(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Whether signing is costly enough to be moved off the async runtime.
    pub fn is_slow(&self) -> bool {
        matches!(self.pair, KeyPair::Rsa(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The example key of RFC 7638 §3.1 and its published thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let thumb = thumbprint(&[("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
        assert_eq!(thumb, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
