//! Upgrades keep what the database holds, and the schema refuses what the code never writes —
//! on SQLite and on PostgreSQL.

use crate::common;

use sqlx::Row as _;
use token_issuer::store::Store;

/// A database migrated to just before `version`, as an older release left it.
async fn migrated_before(version: &str, url: &str, dir: &std::path::Path) -> sqlx::AnyPool {
    let old = dir.join("old-migrations");
    std::fs::create_dir(&old).expect("mkdir");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        if name.as_str() < version {
            std::fs::copy(&path, old.join(&name)).expect("copy");
        }
    }
    let db = sqlx::AnyPool::connect(url).await.expect("pool");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("old migrations")
        .run(&db)
        .await
        .expect("migrate to the old schema");
    db
}

#[tokio::test]
async fn the_typed_schema_keeps_clients_assertions_and_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = common::fresh_database(&dir).await;
    let store = Store::connect(&url).await.expect("connect");
    let db = migrated_before("0005", &url, dir.path()).await;
    for sql in [
        "INSERT INTO clients (id, secret_hash, grant_types, scopes, audiences, created_at) \
         VALUES ('svc', 'aGFzaA', 'client_credentials', 'read', '', 1)",
        "INSERT INTO clients (id, public_jwk, grant_types, scopes, audiences, access_token_ttl, created_at) \
         VALUES ('jwt-svc', '{}', 'client_credentials', '', 'urn:api', 60, 2)",
        "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ('jwt-svc', 'seen', 1900000000)",
        // Counters were kept in milliseconds.
        "INSERT INTO rate_limits (key, value, expires_at) VALUES ('k', 'v', 1800000000001)",
    ] {
        sqlx::query(sql).execute(&db).await.expect(sql);
    }

    store.migrate().await.expect("upgrade");

    let clients = store.clients().await.expect("clients");
    let ids: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["jwt-svc", "svc"]);
    assert_eq!(clients[0].access_token_ttl, Some(60));
    // The jti is still remembered: a replayed assertion is still refused.
    let replay = store.record_assertion("jwt-svc", "seen", 1_900_000_000, 0).await;
    assert!(
        matches!(replay, Err(token_issuer::store::StoreError::Conflict)),
        "{replay:?}"
    );
    let expiry: i64 = sqlx::query("SELECT expires_at FROM rate_limits WHERE key = 'k'")
        .fetch_one(&db)
        .await
        .expect("counter")
        .get(0);
    assert_eq!(expiry, 1_800_000_001, "milliseconds became seconds, rounded up");
    // Deleting a client still takes its assertions with it.
    assert!(store.delete_client("jwt-svc").await.expect("delete"));
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM client_assertions")
        .fetch_one(&db)
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_client_has_at_most_one_credential_a_grant_and_a_positive_lifetime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = common::fresh_database(&dir).await;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let db = sqlx::AnyPool::connect(&url).await.expect("pool");
    let insert = |id: &str, secret: &str, jwk: &str, grants: &str, ttl: &str| {
        format!(
            "INSERT INTO clients (id, secret_hash, public_jwk, grant_types, scopes, audiences, \
             access_token_ttl, created_at) VALUES ('{id}', {secret}, {jwk}, '{grants}', '', '', {ttl}, 0)"
        )
    };
    let ok = insert("ok", "'h'", "NULL", "client_credentials", "NULL");
    sqlx::query(&ok).execute(&db).await.expect("a valid client");
    let public = insert("app", "NULL", "NULL", "authorization_code refresh_token", "NULL");
    sqlx::query(&public).execute(&db).await.expect("a public client");
    for (why, sql) in [
        (
            "both credentials",
            insert("both", "'h'", "'{}'", "client_credentials", "NULL"),
        ),
        (
            "client_credentials without a credential",
            insert("none", "NULL", "NULL", "client_credentials", "NULL"),
        ),
        ("no grant", insert("nogrant", "'h'", "NULL", "", "NULL")),
        (
            "zero lifetime",
            insert("ttl", "'h'", "NULL", "client_credentials", "0"),
        ),
    ] {
        assert!(
            sqlx::query(&sql).execute(&db).await.is_err(),
            "{why} must be refused"
        );
    }
}
