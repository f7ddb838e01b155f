//! `/openapi.json`: an OpenAPI 3.1 document of exactly the endpoints the server routes.
//! (scripts/api-schema checks the answers against it with schemathesis.)

use crate::common::{start, start_with};
use serde_json::Value;

/// The contract's endpoint table, plus userinfo by POST (OpenID Connect Core §5.3.1), the
/// hosted pages' forms and the document itself.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/oauth2/authorize"),
    ("post", "/oauth2/authorize"),
    ("post", "/oauth2/authorize/login"),
    ("post", "/oauth2/authorize/consent"),
    ("get", "/oauth2/logout"),
    ("post", "/oauth2/logout"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/oauth2/token"),
    ("post", "/oauth2/revoke"),
    ("post", "/oauth2/introspect"),
    ("get", "/oauth2/userinfo"),
    ("post", "/oauth2/userinfo"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/logout-all"),
    ("get", "/api/v1/users/me"),
    ("delete", "/api/v1/users/me"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                ops.push((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_the_issuer() {
    let s = start().await;
    let resp = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], s.base);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_secret_basic"]["scheme"], "basic");
}

#[tokio::test]
async fn every_contract_endpoint_is_documented_and_every_documented_one_is_routed() {
    let s = start().await;
    let doc = s.get_json("/openapi.json").await;
    let documented = operations(&doc);
    let mut ids: Vec<&str> = documented
        .iter()
        .map(|(method, path)| {
            doc["paths"][path][method]["operationId"]
                .as_str()
                .expect("operationId")
        })
        .collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    for (method, path) in ROUTES {
        assert!(
            documented.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is not documented"
        );
    }
    for (method, path) in &documented {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = s
            .client
            .request(method.clone(), s.url(path))
            .send()
            .await
            .expect("request");
        assert!(
            ![404, 405].contains(&resp.status().as_u16()),
            "{method} {path} is documented but answers {}",
            resp.status()
        );
    }
}

#[tokio::test]
async fn what_extractors_refuse_is_documented_where_they_apply() {
    let s = start().await;
    let doc = s.get_json("/openapi.json").await;
    let paths = &doc["paths"];
    let resolve = |answer: &Value| -> Value {
        match answer["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().expect("ref name");
                doc["components"]["responses"][name].clone()
            }
            None => answer.clone(),
        }
    };
    // A JSON body: 400, 413, 415 and 422, and every endpoint's 500 and 503: the error body.
    let register = &paths["/api/v1/auth/register"]["post"]["responses"];
    for status in ["400", "413", "415", "422", "500", "503"] {
        let answer = resolve(&register[status]);
        assert_eq!(
            answer["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
            "register {status}"
        );
        assert!(answer["headers"]["X-Request-Id"].is_object(), "register {status}");
    }
    assert!(
        resolve(&register["429"])["headers"]["Retry-After"].is_object(),
        "429 carries Retry-After"
    );
    assert!(resolve(&register["503"])["headers"]["Retry-After"].is_object());
    // Wrong credentials are no authentication challenge.
    let login = &paths["/api/v1/auth/login"]["post"]["responses"];
    assert!(resolve(&login["401"])["headers"]
        .get("WWW-Authenticate")
        .is_none());
    // A bearer: 401 with the challenge; no JSON-body answers without a body.
    let me = &paths["/api/v1/users/me"]["get"];
    assert_eq!(me["security"][0]["bearer"], serde_json::json!([]));
    assert!(resolve(&me["responses"]["401"])["headers"]["WWW-Authenticate"].is_object());
    assert!(me["responses"].get("415").is_none(), "GET /users/me has no body");
    // The OAuth forms are form-encoded, and their 401 is the OAuth error with its challenge.
    let token = &paths["/oauth2/token"]["post"];
    assert!(token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    let unauthorized = resolve(&token["responses"]["401"]);
    assert_eq!(
        unauthorized["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OAuthErrorBody"
    );
    assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
    // Their failures come in RFC 6749's shape, or the router's when overloaded or timed out.
    for status in ["500", "503"] {
        let shapes = &resolve(&token["responses"][status])["content"]["application/json"]["schema"]["oneOf"];
        assert_eq!(
            shapes,
            &serde_json::json!([
                {"$ref": "#/components/schemas/OAuthErrorBody"},
                {"$ref": "#/components/schemas/ErrorBody"}
            ]),
            "token {status}"
        );
    }
}

#[tokio::test]
async fn metrics_on_the_admin_listener_leave_the_public_document() {
    let admin = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin_addr = admin.local_addr().expect("addr").to_string();
    drop(admin);
    let s = start_with(&[("ISSUER_ADMIN_BIND", admin_addr.as_str())]).await;
    let doc = s.get_json("/openapi.json").await;
    assert!(doc["paths"].get("/metrics").is_none());
    assert!(doc["paths"].get("/.well-known/jwks.json").is_some());
    let resp = s.client.get(s.url("/metrics")).send().await.expect("request");
    assert_eq!(resp.status(), 404);
}
