//! Housekeeping on both databases: what expired goes, what is live or kept for good stays.

use crate::common;

use sqlx::Row as _;
use token_issuer::store::Store;

#[tokio::test]
async fn expired_tokens_jtis_and_counters_are_pruned_and_live_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = common::fresh_database(&dir).await;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&url).await.expect("pool");
    let now: i64 = 1_800_000_000;
    let (past, future) = (now - 10, now + 1000);
    let rows: Vec<String> = vec![
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'a@example.com', 'x', 0)".into(),
        "INSERT INTO refresh_families (id, user_id, client_id, created_at) VALUES ('f-old', 'u1', 'first-party', 0)".into(),
        "INSERT INTO refresh_families (id, user_id, client_id, created_at) VALUES ('f-live', 'u1', 'first-party', 0)".into(),
        format!("INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ('h-old', 'f-old', 0, {past})"),
        format!("INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ('h-live', 'f-live', 0, {future})"),
        "INSERT INTO clients (id, secret_hash, grant_types, scopes, audiences, created_at) VALUES ('c1', 'h', 'client_credentials', '', '', 0)".into(),
        format!("INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ('c1', 'j-old', {past})"),
        format!("INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ('c1', 'j-live', {future})"),
        format!("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('r-old', {past})"),
        format!("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('r-live', {future})"),
        format!("INSERT INTO rate_limits (key, value, expires_at) VALUES ('k-old', 'v', {past})"),
        format!("INSERT INTO rate_limits (key, value, expires_at) VALUES ('k-live', 'v', {future})"),
        "INSERT INTO rate_limits (key, value, expires_at) VALUES ('k-forever', 'v', NULL)".into(),
        // Milliseconds, as an instance of an earlier version writes during a rolling upgrade.
        format!("INSERT INTO rate_limits (key, value, expires_at) VALUES ('k-ms', 'v', {})", future * 1000),
    ];
    for sql in &rows {
        sqlx::query(sql).execute(&db).await.expect(sql);
    }

    assert_eq!(store.prune_expired(now).await.expect("prune"), 6);

    let ids = |sql: &'static str| {
        let db = db.clone();
        async move {
            let mut ids: Vec<String> = sqlx::query(sql)
                .fetch_all(&db)
                .await
                .expect(sql)
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(ids("SELECT token_hash FROM refresh_tokens").await, ["h-live"]);
    assert_eq!(ids("SELECT id FROM refresh_families").await, ["f-live"]);
    assert_eq!(ids("SELECT jti FROM client_assertions").await, ["j-live"]);
    assert_eq!(ids("SELECT jti FROM revoked_access_tokens").await, ["r-live"]);
    assert_eq!(ids("SELECT key FROM rate_limits").await, ["k-forever", "k-live"]);
    assert_eq!(store.prune_expired(now).await.expect("prune"), 0, "idempotent");
}
