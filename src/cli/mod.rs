//! The command line: `serve`, `migrate`, `check-config`, `keys`, `clients`, `users`.

mod clients;
mod keys;
mod log_writer;
mod logging;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::{Accounts, Passwords};
use crate::app::{AppState, StartError};
use crate::clock::Clock;
use crate::config::{LogFormat, Mode, Settings};
use crate::http::{Listeners, Server};
use crate::keys::source::KeySource;
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "token-issuer",
    version,
    about = "Issues JWT access tokens and rotating refresh tokens; publishes a JWKS."
)]
struct Cli {
    /// TOML configuration file; ISSUER_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets masked) and check the keys; non-zero if invalid.
    CheckConfig,
    /// Print a configuration file with every setting, its meaning and its default.
    ExampleConfig,
    /// Ask the running instance whether it is alive (`/healthz` on ISSUER_ADMIN_BIND, else on
    /// ISSUER_BIND): for a container HEALTHCHECK in an image with no shell or curl.
    Healthcheck,
    /// Manage the signing keys on the configured key source.
    Keys {
        /// Who runs the command, for the audit log (default: the OS user and the host).
        #[arg(long, global = true, value_name = "NAME")]
        actor: Option<String>,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Manage registered OAuth clients.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Stop a user from logging in or refreshing.
    Disable {
        /// The account's email (it may begin with '-').
        #[arg(allow_hyphen_values = true, value_name = "EMAIL")]
        email: String,
    },
    /// Allow a disabled user to log in again.
    Enable {
        /// The account's email (it may begin with '-').
        #[arg(allow_hyphen_values = true, value_name = "EMAIL")]
        email: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no settings: it documents them.
    if let Command::ExampleConfig = cli.command {
        print!("{}", crate::config::example_toml());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            // The settings are refused, so the log format is read on its own.
            let json = std::env::var("ISSUER_LOG_FORMAT").is_ok_and(|f| f == "json");
            let _flush = logging::init(if json { LogFormat::Json } else { LogFormat::Pretty });
            return refused(&e);
        }
    };
    // Declared before the runtime, so dropped after it: the last lines of its tasks are kept.
    let logs = logging::init(settings.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = settings.worker_threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json_logs = settings.log_format == LogFormat::Json;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::CheckConfig => check_config(settings).await,
            Command::ExampleConfig => Ok(()),
            Command::Healthcheck => healthcheck(&settings).await,
            Command::Keys { command, actor } => keys::run(&settings, command, actor)
                .await
                .map_err(StartError::KeyCommand),
            Command::Clients { command } => {
                let store = Store::connect(&settings.database_url).await?;
                store.migrate().await?;
                let clock = Clock::system();
                let clients = crate::oauth::Clients::new(
                    store,
                    settings.access_token_ttl,
                    clock.clone(),
                    crate::store::Changes::new(clock),
                );
                clients::run(&clients, command).await.map_err(StartError::from)
            }
            Command::Users { command } => users(settings, command).await,
        }
    });
    // What `report` prints next comes after the lines logged before it.
    logs.write_out();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Config(e)) => refused(&e),
        Err(e) => {
            report(&e);
            // A pipeline that keeps only the JSON lines still learns why the command failed.
            if json_logs {
                tracing::error!(error = %e, "command failed");
            }
            ExitCode::FAILURE
        }
    }
}

/// What went wrong, as the operator reads it: plain `error: …` lines on stderr, no timestamp
/// or colour, each problem once.
fn report(e: &dyn std::fmt::Display) {
    for line in e.to_string().lines() {
        eprintln!("error: {line}");
    }
}

/// A refused configuration: the problems for the operator, and an audit event for the log
/// that names the settings (the operator's lines already say what is wrong with them).
fn refused(e: &crate::config::ConfigError) -> ExitCode {
    report(e);
    let settings = e.settings().join(",");
    tracing::error!(target: "audit", event = "configuration_refused", %settings, "configuration refused");
    ExitCode::from(2)
}

async fn serve(settings: Settings) -> Result<(), StartError> {
    if settings.mode == Mode::Development {
        let transport = match settings.tls() {
            Some(_) => "HTTPS",
            None => "plain HTTP",
        };
        tracing::warn!(
            "development mode ({transport}): embedded defaults, keys generated on demand; \
             set ISSUER_ENV=production for real deployments"
        );
    }
    if settings.behind_tls_proxy && settings.trusted_proxies.is_empty() {
        tracing::warn!(
            "ISSUER_BEHIND_TLS_PROXY is set but ISSUER_TRUSTED_PROXIES is empty: every client \
             counts as the proxy's address, so all clients share one login, rate and \
             in-flight budget; list the proxy's addresses in ISSUER_TRUSTED_PROXIES"
        );
    }
    // Listen before the slow start: an early SIGHUP must not kill the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let listeners = Listeners::bind(&settings)?;
    let app = AppState::build(settings).await?;
    let (main, admin) = listeners.listen()?;
    let server = Server::new(main, admin, app.clone());
    let addr = server.local_addr().map_err(StartError::Serve)?;
    let admin = app.settings.admin_bind.map(|a| a.to_string()).unwrap_or_default();
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(%addr, tls = app.tls.is_some(), %admin, workers, "listening");
    reload_on_sighup(hangups, app.clone());
    server
        .run(shutdown_signal(app.clone()))
        .await
        .map_err(StartError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP re-reads the key source and the TLS certificate at once (the periodic checks go
/// on regardless).
fn reload_on_sighup(hangups: std::io::Result<tokio::signal::unix::Signal>, app: std::sync::Arc<AppState>) {
    match hangups {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the keyset and the TLS certificate");
                    app.reloader.request_reload();
                    if let Some(tls) = app.tls.clone() {
                        tokio::task::spawn_blocking(move || tls.reload_logged(true))
                            .await
                            .ok();
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; keys reload on the interval only"),
    }
}

/// SIGTERM or Ctrl-C; then, for `ISSUER_SHUTDOWN_DELAY`, serving on as not ready, so that
/// load balancers take the instance out before its listener closes.
async fn shutdown_signal(app: std::sync::Arc<AppState>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    let delay = app.settings.shutdown_delay;
    if !delay.is_zero() {
        app.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutting down: not ready, serving on meanwhile"
        );
        tokio::time::sleep(delay).await;
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn migrate(settings: Settings) -> Result<(), StartError> {
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    println!(
        "migrations applied to {}",
        crate::values::mask_url_password(&settings.database_url)
    );
    Ok(())
}

async fn check_config(settings: Settings) -> Result<(), StartError> {
    for (name, value) in settings.effective() {
        println!("{name} = {value}");
    }
    // What `serve` would trip on, each check said: ok, skipped (and why), or failed.
    let mut failed = Vec::new();
    let mut report = |check: &str, outcome: Result<String, String>| match outcome {
        Ok(said) => println!("check {check}: {said}"),
        Err(why) => {
            println!("check {check}: FAILED: {why}");
            failed.push(format!("{check}: {why}"));
        }
    };
    report("tls", check_tls(&settings));
    report("database", check_database(&settings).await);
    report("rate-limit store", check_rate_limit_store(&settings).await);
    report("keys", check_keys(&settings).await);
    match failed.is_empty() {
        true => Ok(()),
        false => Err(StartError::Checks(failed.join("\n"))),
    }
}

/// A dependency answers within this long, or counts as unreachable.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn check_tls(settings: &Settings) -> Result<String, String> {
    match settings.tls() {
        None => Ok("skipped (no ISSUER_TLS_CERT: plain HTTP)".into()),
        Some(files) => crate::http::tls::Tls::load(&files.cert, &files.key)
            .map(|_| "certificate and key readable and matching".into())
            .map_err(|e| e.to_string()),
    }
}

async fn check_database(settings: &Settings) -> Result<String, String> {
    let url = &settings.database_url;
    if let Some(path) = crate::store::sqlite_file(url) {
        if !std::path::Path::new(path).exists() {
            return Ok(format!("skipped ({path} does not exist yet; serve creates it)"));
        }
    }
    let connected = tokio::time::timeout(CHECK_TIMEOUT, async {
        let store = Store::connect(url).await?;
        store.ping().await?;
        store.close().await;
        Ok::<_, crate::store::StoreError>(())
    })
    .await;
    match connected {
        Ok(Ok(())) => Ok("reachable".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

async fn check_rate_limit_store(settings: &Settings) -> Result<String, String> {
    let crate::config::RateLimitStore::Redis(url) = settings.rate_limit_store() else {
        return Ok(format!(
            "skipped ({}: checked with the database)",
            settings.rate_limit_store()
        ));
    };
    let counters = crate::ratelimit::Counters::redis(&url).map_err(|e| e.to_string())?;
    match tokio::time::timeout(CHECK_TIMEOUT, counters.get("check-config")).await {
        Ok(Ok(_)) => Ok("Redis reachable".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "Redis gave no answer within {} s",
            CHECK_TIMEOUT.as_secs()
        )),
    }
}

async fn check_keys(settings: &Settings) -> Result<String, String> {
    let source = KeySource::from_spec(&settings.key_source).await;
    let doc = source.load().await.map_err(|e| e.to_string())?.doc;
    if doc.keys.is_empty() {
        let alg = settings.signing_alg;
        return match source.generates_when_empty(settings.mode) {
            true => Ok(format!(
                "none yet; serve generates a {alg} key (development, file source)"
            )),
            false => Err(crate::keys::KeyError::NoKeyset {
                alg,
                source_name: source.name(),
            }
            .to_string()),
        };
    }
    let set = source
        .serving_keyset(doc, settings.signing_alg)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} published, an active {} key present",
        set.key_count(),
        settings.signing_alg
    ))
}

async fn users(settings: Settings, command: UsersCommand) -> Result<(), StartError> {
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let accounts = Accounts::new(
        store,
        Passwords::new(settings.argon2()).await?,
        settings.password_min_length,
        Clock::system(),
    );
    let (email, disable) = match &command {
        UsersCommand::Disable { email } => (email, true),
        UsersCommand::Enable { email } => (email, false),
    };
    let user_id = accounts.set_disabled(email, disable).await?;
    tracing::info!(target: "audit", event = if disable { "user_disabled" } else { "user_enabled" }, %user_id);
    println!("{} {email}", if disable { "disabled" } else { "enabled" });
    Ok(())
}

/// `GET /healthz` over plain HTTP on the admin listener, or on the main one when it serves
/// plain HTTP; succeeds on a 200.
async fn healthcheck(settings: &Settings) -> Result<(), StartError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = match (settings.admin_bind, settings.tls()) {
        (Some(admin), _) => admin,
        (None, None) => settings.bind,
        (None, Some(_)) => {
            return Err(StartError::Checks(
                "the main listener speaks TLS: set ISSUER_ADMIN_BIND for the health check".into(),
            ))
        }
    };
    // A wildcard listen address answers on loopback.
    let target = match addr.ip().is_unspecified() {
        true if addr.is_ipv6() => std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        true => std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port())),
        false => addr,
    };
    let failed = |why: String| StartError::Checks(format!("healthcheck: {target}: {why}"));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = vec![0; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| failed("no answer within 5 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    match head.starts_with(b"HTTP/1.1 200") {
        true => {
            println!("healthy");
            Ok(())
        }
        false => Err(failed(format!(
            "answered {}",
            String::from_utf8_lossy(&head).lines().next().unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("token-issuer").chain(args.iter().copied()))
    }

    #[test]
    fn every_option_and_argument_says_what_it_takes() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<Cli as clap::CommandFactory>::command(),
            "token-issuer",
            &mut missing,
        );
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn identifiers_beginning_with_a_hyphen_are_values_not_flags() {
        // One base64url kid in 32 begins with '-'.
        let kid = "-4dA70q4bjHl6cZf_WToTuaQtdvKx-IsTk5vs6h3g9g";
        match parse(&["keys", "revoke", kid]).map(|c| c.command) {
            Ok(Command::Keys {
                command: keys::KeysCommand::Revoke { kid: parsed },
                ..
            }) => assert_eq!(parsed, kid),
            _ => panic!("keys revoke {kid} did not parse"),
        }
        for args in [
            ["clients", "delete", "-svc"].as_slice(),
            &["clients", "rotate-secret", "-svc"],
            &[
                "clients",
                "create",
                "--id",
                "-svc",
                "--grant",
                "client_credentials",
            ],
        ] {
            match parse(args).map(|c| c.command) {
                Ok(Command::Clients {
                    command:
                        clients::ClientsCommand::Delete { id }
                        | clients::ClientsCommand::RotateSecret { id }
                        | clients::ClientsCommand::Create { id, .. },
                }) => assert_eq!(id, "-svc"),
                _ => panic!("{args:?} did not parse"),
            }
        }
        match parse(&["users", "disable", "-a@example.com"]).map(|c| c.command) {
            Ok(Command::Users {
                command: UsersCommand::Disable { email },
            }) => assert_eq!(email, "-a@example.com"),
            _ => panic!("users disable -a@example.com did not parse"),
        }
    }

    #[test]
    fn help_is_still_help() {
        for args in [["keys", "revoke", "--help"], ["clients", "delete", "--help"]] {
            let err = parse(&args).err().map(|e| e.kind());
            assert_eq!(err, Some(clap::error::ErrorKind::DisplayHelp), "{args:?}");
        }
    }
}
