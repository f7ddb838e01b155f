//! The binary: configuration refusals in production, check-config, migrate.

use crate::common::run_issuer as issuer;

const NO_ENV: &[(&str, &str)] = &[];

const PROD: [(&str, &str); 6] = [
    ("ISSUER_ENV", "production"),
    ("ISSUER_URL", "https://auth.example.com"),
    ("ISSUER_DATABASE_URL", "sqlite://issuer.db"),
    ("ISSUER_KEY_SOURCE", "file:keys"),
    ("ISSUER_CORS_ORIGINS", "https://app.example.com"),
    ("ISSUER_BEHIND_TLS_PROXY", "true"),
];

#[test]
fn production_refuses_to_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut http = PROD.to_vec();
    http[1] = ("ISSUER_URL", "http://auth.example.com");
    let (ok, _, err) = issuer(dir.path(), &["serve"], &http);
    assert!(!ok);
    // For the operator: one plain line, printed once, no colour or timestamp. For the log:
    // an audit event naming the setting.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors,
        ["error: ISSUER_URL: must be https:// in production, not http://auth.example.com"],
        "{err}"
    );
    assert_eq!(err.matches("must be https://").count(), 1, "printed once: {err}");
    assert!(!err.contains('\u{1b}'), "no colour on a pipe: {err}");
    assert!(
        err.lines()
            .any(|l| l.contains("event=\"configuration_refused\"") && l.contains("settings=ISSUER_URL")),
        "{err}"
    );

    // Everything wrong at once: one run names every setting.
    let (ok, _, err) = issuer(
        dir.path(),
        &["serve"],
        &[
            ("ISSUER_ENV", "production"),
            ("ISSUER_URL", "http://auth.example.com"),
        ],
    );
    assert!(!ok);
    for setting in [
        "ISSUER_URL",
        "ISSUER_DATABASE_URL",
        "ISSUER_KEY_SOURCE",
        "ISSUER_CORS_ORIGINS",
        "ISSUER_TLS_CERT",
    ] {
        assert!(
            err.contains(&format!("{setting}: ")),
            "{setting} in one run: {err}"
        );
    }

    for missing in ["ISSUER_DATABASE_URL", "ISSUER_KEY_SOURCE", "ISSUER_CORS_ORIGINS"] {
        let env: Vec<_> = PROD.iter().copied().filter(|(k, _)| *k != missing).collect();
        let (ok, _, err) = issuer(dir.path(), &["serve"], &env);
        assert!(!ok, "{missing}");
        assert!(err.contains(missing), "{missing}: {err}");
    }

    // Everything given, but no key: production never generates one, and says how to.
    let (ok, _, err) = issuer(dir.path(), &["serve"], &PROD);
    assert!(!ok);
    assert!(
        err.contains("no keyset in file:keys") && err.contains("keys generate --alg RS256"),
        "{err}"
    );
    assert!(!dir.path().join("keys/keyset.json").exists());

    // A weak key in the keyset: refused, naming the key.
    use rsa::pkcs8::EncodePrivateKey as _;
    let weak = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("generate");
    let pem = weak
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .expect("pem")
        .to_string();
    let keyset = serde_json::json!({"keys": [{"kid": "weak-key", "alg": "RS256", "state": "active",
        "created_at": "2026-01-01T00:00:00Z", "activated_at": "2026-01-01T00:00:00Z", "retired_at": null,
        "private_key_pem": pem}]});
    std::fs::create_dir_all(dir.path().join("keys")).expect("mkdir");
    let path = dir.path().join("keys/keyset.json");
    std::fs::write(&path, keyset.to_string()).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let (ok, _, err) = issuer(dir.path(), &["serve"], &PROD);
    assert!(!ok);
    assert!(err.contains("weak-key") && err.contains("2048"), "{err}");
}

#[test]
fn check_config_prints_the_effective_configuration_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A database that does not answer is what serve would trip on: check-config fails, and
    // names it — without the password.
    let (ok, out, err) = issuer(
        dir.path(),
        &["check-config"],
        &[(
            "ISSUER_DATABASE_URL",
            "postgres://issuer:hunter2@127.0.0.1:1/issuer",
        )],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("ISSUER_DATABASE_URL = postgres://issuer:***@127.0.0.1:1/issuer"),
        "{out}"
    );
    assert!(out.contains("check database: FAILED"), "{out}");
    assert!(err.contains("error: database: "), "{err}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"), "{out}{err}");
    assert!(out.contains("ISSUER_ACCESS_TOKEN_TTL = 15m"));
    // What is not configured is skipped, and says so; the rest passes.
    let (ok, out, err) = issuer(dir.path(), &["check-config"], NO_ENV);
    assert!(ok, "{out}{err}");
    for said in [
        "check tls: skipped (no ISSUER_TLS_CERT",
        "check database: skipped (data/token-issuer.db does not exist yet",
        "check rate-limit store: skipped (memory",
        "check keys: none yet; serve generates a RS256 key",
    ] {
        assert!(out.contains(said), "{said}: {out}");
    }
    let (ok, _, _) = issuer(dir.path(), &["migrate"], NO_ENV);
    assert!(ok);
    let (ok, out, _) = issuer(dir.path(), &["check-config"], NO_ENV);
    assert!(ok && out.contains("check database: reachable"), "{out}");
    let (ok, out, _) = issuer(
        dir.path(),
        &["check-config"],
        &[("ISSUER_RATE_LIMIT_STORE", "redis://127.0.0.1:1")],
    );
    assert!(!ok && out.contains("check rate-limit store: FAILED"), "{out}");
    // Production never makes up a key: an empty source is what serve would refuse.
    let empty = tempfile::tempdir().expect("tempdir");
    let (ok, out, _) = issuer(empty.path(), &["check-config"], &PROD);
    assert!(!ok);
    assert!(
        out.contains("check keys: FAILED: no keyset in file:keys") && out.contains("keys generate"),
        "{out}"
    );

    std::fs::write(dir.path().join("issuer.toml"), "access_token_ttl = \"never\"\n").expect("write");
    let (ok, _, err) = issuer(dir.path(), &["--config", "issuer.toml", "check-config"], NO_ENV);
    assert!(!ok);
    assert!(err.contains("ISSUER_ACCESS_TOKEN_TTL"), "{err}");
    // The environment wins over the file.
    let (ok, out, _) = issuer(
        dir.path(),
        &["--config", "issuer.toml", "check-config"],
        &[("ISSUER_ACCESS_TOKEN_TTL", "5m")],
    );
    assert!(ok);
    assert!(out.contains("ISSUER_ACCESS_TOKEN_TTL = 5m"));
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = issuer(dir.path(), &["migrate"], NO_ENV);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    // Password hashes live there: the service's user alone reads them.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &str| {
        std::fs::metadata(dir.path().join(path))
            .expect(path)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/token-issuer.db"), 0o600);
}

#[test]
fn the_example_configuration_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/token-issuer.example.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = issuer(dir.path(), &["--config", example, "check-config"], NO_ENV);
    assert!(ok, "{err}");
    assert!(out.contains("ISSUER_SIGNING_ALG = RS256"));
    // `example-config` writes that file, and needs no configuration to do it.
    let (ok, printed, err) = issuer(
        dir.path(),
        &["example-config"],
        &[("ISSUER_BIND", "not an address")],
    );
    assert!(ok, "{err}");
    assert_eq!(printed, std::fs::read_to_string(example).expect("example file"));
}

#[test]
fn clients_cli_shows_a_secret_once_and_never_lists_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let create = [
        "clients",
        "create",
        "--id",
        "billing",
        "--grant",
        "client_credentials",
        "--scope",
        "read write",
        "--audience",
        "https://api.example.com",
        "--audience",
        "urn:reports:api",
        "--access-token-ttl",
        "5m",
    ];
    let (ok, out, err) = issuer(dir.path(), &create, NO_ENV);
    assert!(ok, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("secret printed")
        .to_owned();
    assert_eq!(secret.len(), 43, "256 random bits");
    assert!(
        err.contains("client_created") && !err.contains(&secret),
        "audit without the secret: {err}"
    );
    let (ok, _, err) = issuer(dir.path(), &create, NO_ENV);
    assert!(!ok && err.contains("exists already"), "{err}");

    for (ok_list, listing) in [
        issuer(dir.path(), &["clients", "list"], NO_ENV),
        issuer(dir.path(), &["clients", "list", "--json"], NO_ENV),
    ]
    .map(|(ok, out, _)| (ok, out))
    {
        assert!(
            ok_list
                && listing.contains("billing")
                && listing.contains("urn:reports:api")
                && !listing.contains(&secret),
            "{listing}"
        );
    }
    let (ok, out, _) = issuer(dir.path(), &["clients", "rotate-secret", "billing"], NO_ENV);
    let rotated = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("new secret");
    assert!(ok && rotated != secret);

    for (args, reason) in [
        (
            vec![
                "clients",
                "create",
                "--id",
                "first-party",
                "--grant",
                "client_credentials",
            ],
            "client id",
        ),
        (
            vec![
                "clients",
                "create",
                "--id",
                "6f1c9a52-8c41-4c1e-9a55-0d1f0b7f5a10",
                "--grant",
                "client_credentials",
            ],
            "nor a UUID",
        ),
        (
            vec!["clients", "create", "--id", "x", "--grant", "password"],
            "unknown grant type",
        ),
        (
            vec![
                "clients",
                "create",
                "--id",
                "x",
                "--grant",
                "client_credentials",
                "--access-token-ttl",
                "2h",
            ],
            "ISSUER_ACCESS_TOKEN_TTL",
        ),
        (
            vec![
                "clients",
                "create",
                "--id",
                "x",
                "--grant",
                "client_credentials",
                "--audience",
                "api",
            ],
            "invalid audience",
        ),
        (
            vec![
                "clients",
                "create",
                "--id",
                "x",
                "--grant",
                "client_credentials",
                "--audience",
                "urn:reports:api#part",
            ],
            "without a fragment",
        ),
        (vec!["clients", "delete", "nobody"], "no client nobody"),
    ] {
        let (ok, _, err) = issuer(dir.path(), &args, NO_ENV);
        assert!(!ok && err.contains(reason), "{args:?}: {err}");
    }
    let (ok, out, _) = issuer(dir.path(), &["clients", "delete", "billing"], NO_ENV);
    assert!(ok && out.contains("deleted billing"));
}

#[tokio::test]
async fn users_disable_and_enable_name_the_user_in_the_audit_log() {
    let server = crate::common::start().await;
    let user = server.register("operator-target@example.com").await;
    let env = [
        ("ISSUER_DATABASE_URL", server.database_url.as_str()),
        ("ISSUER_LOG_FORMAT", "json"),
    ];
    for (command, event) in [("disable", "user_disabled"), ("enable", "user_enabled")] {
        let (ok, out, err) = issuer(
            server.dir.path(),
            &["users", command, "operator-target@example.com"],
            &env,
        );
        assert!(ok, "{err}");
        assert!(out.contains("operator-target@example.com"), "{out}");
        let audit: serde_json::Value = err
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in {err}"));
        assert_eq!(audit["user_id"], user["id"], "{audit}");
    }
    let (ok, _, err) = issuer(
        server.dir.path(),
        &["users", "enable", "nobody@example.com"],
        &env,
    );
    assert!(!ok);
    assert!(
        err.contains("error: accounts: no user with email nobody@example.com"),
        "{err}"
    );
}

#[tokio::test]
async fn a_running_sqlite_database_and_its_wal_are_readable_by_the_service_alone() {
    let server = crate::common::start().await;
    if !server.database_url.starts_with("sqlite:") {
        return; // PostgreSQL keeps its own files.
    }
    server.register("wal@example.com").await;
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["issuer.db", "issuer.db-wal", "issuer.db-shm"] {
        let path = server.dir.path().join(file);
        let mode = std::fs::metadata(&path).expect(file).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}

#[test]
fn a_busy_port_is_refused_before_anything_is_created_and_names_its_setting() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = busy.local_addr().expect("addr").to_string();
    for setting in ["ISSUER_BIND", "ISSUER_ADMIN_BIND"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = vec![("ISSUER_BIND", "127.0.0.1:0"), ("ISSUER_LOG_FORMAT", "json")];
        env.push((setting, taken.as_str()));
        let (ok, _, err) = issuer(dir.path(), &["serve"], &env);
        // With JSON logs, the failure is a JSON line too.
        assert!(
            err.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|l| l["message"] == "command failed"
                    && l["error"].as_str().is_some_and(|e| e.contains(setting))),
            "{err}"
        );
        assert!(!ok, "{setting}: {err}");
        assert!(
            err.contains(&format!("error: {setting}: cannot listen on {taken}"))
                && err.contains(&format!("set {setting} to a free address")),
            "{err}"
        );
        assert!(!dir.path().join("data").exists(), "no database was made: {err}");
        assert!(!dir.path().join("keys").exists(), "no key was made: {err}");
    }
}

#[test]
fn clients_cli_registers_browser_and_native_apps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = [
        "clients",
        "create",
        "--id",
        "spa",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        "https://spa.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--post-logout-redirect-uri",
        "https://spa.example.com/",
        "--scope",
        "openid email",
        "--public",
    ];
    let (ok, out, err) = issuer(dir.path(), &app, NO_ENV);
    assert!(ok, "{err}");
    assert!(
        !out.contains("client_secret"),
        "a public client has no secret: {out}"
    );
    assert!(out.contains("authentication: none"), "{out}");
    let (ok, listing, _) = issuer(dir.path(), &["clients", "list"], NO_ENV);
    assert!(ok);
    assert!(
        listing.contains("REDIRECT URIS") && listing.contains("https://spa.example.com/callback"),
        "{listing}"
    );
    let (_, json, _) = issuer(dir.path(), &["clients", "list", "--json"], NO_ENV);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json[0]["auth"], "none");
    assert_eq!(json[0]["public"], true);
    assert_eq!(
        json[0]["post_logout_redirect_uris"],
        serde_json::json!(["https://spa.example.com/"])
    );

    // Redirect URIs are checked at registration, each refusal saying why.
    for (uri, why) in [
        ("http://spa.example.com/cb", "loopback"),
        ("https://*.example.com/cb", "wildcards"),
        ("https://spa.example.com/cb#top", "fragment"),
    ] {
        let (ok, _, err) = issuer(
            dir.path(),
            &[
                "clients",
                "create",
                "--id",
                "bad",
                "--grant",
                "authorization_code",
                "--redirect-uri",
                uri,
                "--public",
            ],
            NO_ENV,
        );
        assert!(!ok && err.contains(why), "{uri}: {err}");
    }
    let (ok, _, err) = issuer(
        dir.path(),
        &[
            "clients",
            "create",
            "--id",
            "bad",
            "--grant",
            "authorization_code",
            "--public",
        ],
        NO_ENV,
    );
    assert!(!ok && err.contains("--redirect-uri"), "{err}");
    let (ok, _, err) = issuer(
        dir.path(),
        &[
            "clients",
            "create",
            "--id",
            "bad",
            "--grant",
            "client_credentials",
            "--public",
        ],
        NO_ENV,
    );
    assert!(
        !ok && err.contains("public client cannot use client_credentials"),
        "{err}"
    );
}

#[test]
fn scheduled_rotation_succeeds_when_there_is_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = issuer(dir.path(), &["keys", "generate", "--alg", "EdDSA"], NO_ENV);
    assert!(ok, "{err}");
    let env = [("ISSUER_SIGNING_ALG", "EdDSA")];
    // No pending key: a scheduled run adds one for a later run to promote.
    let (ok, out, err) = issuer(dir.path(), &["keys", "rotate", "--if-due"], &env);
    assert!(ok && out.contains("added one"), "{out}{err}");
    // Not published long enough: the run says so and succeeds; without --if-due it refuses.
    let (ok, out, err) = issuer(dir.path(), &["keys", "rotate", "--if-due"], &env);
    assert!(
        ok && out.contains("nothing to rotate") && out.contains("can be promoted in"),
        "{out}{err}"
    );
    let (ok, _, err) = issuer(dir.path(), &["keys", "rotate"], &env);
    assert!(!ok && err.contains("published long enough"), "{err}");
    let (_, listing, _) = issuer(dir.path(), &["keys", "list", "--json"], &env);
    let keys: serde_json::Value = serde_json::from_str(&listing).expect("json");
    assert_eq!(
        keys.as_array().expect("keys").len(),
        2,
        "one active, one pending: {listing}"
    );
}
