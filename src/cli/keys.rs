//! `token-issuer keys …`: the operator's view of the keyset on the configured source. Every
//! change goes through [`KeySource::update`] and is logged as an audit event.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::keys::lifecycle::{self, Timing, Transition};
use crate::keys::source::KeySource;
use crate::keys::{
    generate_record, rsa_bits, thumbprint_of, Alg, KeyError, KeyRecord, KeyState, KeysetDocument,
    PrivateKeyPem,
};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show every key: kid, algorithm, state, and when it may be promoted or pruned.
    List {
        /// One JSON array, for scripts (never any key material).
        #[arg(long)]
        json: bool,
    },
    /// Add a new key: active at once if its algorithm has no active key, else pending.
    Generate {
        /// RS256 or EdDSA.
        #[arg(long, value_name = "RS256|EdDSA")]
        alg: Alg,
        /// RSA modulus size: 2048 (default), 3072 or 4096.
        #[arg(long, value_name = "BITS")]
        bits: Option<usize>,
    },
    /// Add an existing PKCS#8 PEM private key, like `generate` does.
    Import {
        /// RS256 or EdDSA: the algorithm the key signs with.
        #[arg(long, value_name = "RS256|EdDSA")]
        alg: Alg,
        /// The PKCS#8 PEM file of the private key.
        #[arg(value_name = "FILE.pem")]
        file: PathBuf,
    },
    /// Promote the oldest pending key that has been published long enough, retire the
    /// active one, and add a new pending key for the next rotation.
    Rotate {
        /// RS256 or EdDSA; defaults to ISSUER_SIGNING_ALG.
        #[arg(long, value_name = "RS256|EdDSA")]
        alg: Option<Alg>,
        /// For a schedule (a cron job): rotate only when a pending key is due, else say so
        /// and succeed; with no pending key at all, add one for a later run to promote.
        #[arg(long)]
        if_due: bool,
    },
    /// Remove retired keys once every token they signed has expired.
    Prune,
    /// Emergency: remove a (compromised) key from the keyset and the JWKS at once.
    Revoke {
        /// The key's kid, as `keys list` shows it (base64url, so it may begin with '-').
        #[arg(allow_hyphen_values = true, value_name = "KID")]
        kid: String,
    },
}

pub async fn run(settings: &Settings, command: KeysCommand, actor: Option<String>) -> Result<(), KeyError> {
    let source = KeySource::from_spec(&settings.key_source).await;
    let timing = Timing::from_settings(settings);
    let actor = actor.unwrap_or_else(local_actor);
    let now = OffsetDateTime::now_utc;
    match command {
        KeysCommand::List { json } => list(&source, timing, json).await,
        KeysCommand::Generate { alg, bits } => {
            if alg == Alg::EdDsa && bits.is_some() {
                return Err(KeyError::Generate("--bits applies to RS256 keys only".into()));
            }
            let record = generate(alg, bits.unwrap_or(2048)).await?;
            let change = source.update(|doc| lifecycle::add(doc, record, now())).await?;
            report(&[change], &actor, |_| "key_generated");
            Ok(())
        }
        KeysCommand::Import { alg, file } => {
            let record = import(alg, &file)?;
            let change = source.update(|doc| lifecycle::add(doc, record, now())).await?;
            report(&[change], &actor, |_| "key_imported");
            Ok(())
        }
        KeysCommand::Rotate { alg, if_due } => {
            let alg = alg.unwrap_or(settings.signing_alg);
            // Refuse before spending seconds on a new RSA key that would not be used.
            let mut preview = source.load().await?.doc;
            match lifecycle::rotate(&mut preview, alg, timing, now()) {
                Ok(_) => {}
                Err(e @ KeyError::NotYetEligible { .. }) if if_due => {
                    println!("nothing to rotate: {e}");
                    return Ok(());
                }
                Err(KeyError::NoPendingKey(_)) if if_due => {
                    let bits = rsa_bits_of(&preview, |k| k.alg == alg && k.state == KeyState::Active);
                    let record = generate(alg, bits).await?;
                    let change = source.update(|doc| lifecycle::add(doc, record, now())).await?;
                    report(&[change], &actor, |_| "key_generated");
                    println!("no pending {alg} key: added one; a later run promotes it once it has been published for ISSUER_KEY_PUBLICATION_PERIOD");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            let bits = rsa_bits_of(&preview, |k| k.alg == alg && k.state == KeyState::Active);
            let next = generate(alg, bits).await?;
            let changes = source
                .update(|doc| {
                    let mut changes = lifecycle::rotate(doc, alg, timing, now())?;
                    changes.push(lifecycle::add(doc, next, now())?);
                    Ok(changes)
                })
                .await?;
            report(&changes, &actor, |_| "key_rotated");
            Ok(())
        }
        KeysCommand::Prune => {
            let (removed, kept) = source
                .update(|doc| Ok(lifecycle::prune(doc, timing, now())))
                .await?;
            report(&removed, &actor, |_| "key_pruned");
            for (kid, left) in kept {
                println!("kept retired {kid}: prunable in {left}");
            }
            if removed.is_empty() {
                println!("nothing to prune");
            }
            Ok(())
        }
        KeysCommand::Revoke { kid } => {
            // Made beforehand (off the runtime), and only when no pending key can take over.
            let doc = source.load().await?.doc;
            let replacement = match lifecycle::revocation_needs_new_key(&doc, &kid) {
                Some(alg) => Some(generate(alg, rsa_bits_of(&doc, |k| k.kid == kid)).await?),
                None => None,
            };
            let fresh = |_| {
                replacement.ok_or_else(|| KeyError::Conflict {
                    source_name: source.name(),
                    reason: "the pending key that was to take over is gone".into(),
                })
            };
            let changes = source
                .update(|doc| lifecycle::revoke(doc, &kid, fresh, now()))
                .await?;
            // Only the revoked key is a revocation; a replacement taking over is a state
            // change (a new one made for it, a generation): a count of revocations stays one.
            report(&changes, &actor, |change| {
                match (change.kid == kid, change.from) {
                    (true, _) => "key_revoked",
                    (false, None) => "key_generated",
                    (false, Some(_)) => "key_state_changed",
                }
            });
            println!(
                "running instances drop {kid} from the JWKS at their next reload (SIGHUP reloads at once)"
            );
            Ok(())
        }
    }
}

/// The RSA size of the first key `pick` selects (2048 if none), for a key that succeeds it.
fn rsa_bits_of(doc: &KeysetDocument, pick: impl Fn(&KeyRecord) -> bool) -> usize {
    doc.keys
        .iter()
        .find(|k| pick(k))
        .and_then(|k| rsa_bits(k.private_key_pem.expose()))
        .unwrap_or(2048)
}

async fn generate(alg: Alg, bits: usize) -> Result<KeyRecord, KeyError> {
    tokio::task::spawn_blocking(move || {
        generate_record(alg, bits, KeyState::Pending, OffsetDateTime::now_utc())
    })
    .await
    .map_err(|e| KeyError::Generate(e.to_string()))?
}

fn import(alg: Alg, file: &std::path::Path) -> Result<KeyRecord, KeyError> {
    let pem = std::fs::read_to_string(file).map_err(|e| KeyError::InvalidKey {
        kid: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let pem = Zeroizing::new(pem);
    let pem = PrivateKeyPem::new(format!("{}\n", pem.trim()));
    let kid = thumbprint_of(alg, pem.expose()).map_err(|e| KeyError::InvalidKey {
        kid: file.display().to_string(),
        reason: match e {
            KeyError::InvalidKey { reason, .. } => reason,
            other => other.to_string(),
        },
    })?;
    Ok(KeyRecord {
        kid,
        alg,
        state: KeyState::Pending,
        created_at: OffsetDateTime::now_utc(),
        activated_at: None,
        retired_at: None,
        private_key_pem: pem,
    })
}

async fn list(source: &KeySource, timing: Timing, as_json: bool) -> Result<(), KeyError> {
    let doc = source.load().await?.doc;
    let now = OffsetDateTime::now_utc();
    let rfc3339 = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
    let promotable =
        |k: &KeyRecord| (k.state == KeyState::Pending).then(|| timing.promotable_at(k.created_at));
    if as_json {
        let keys: Vec<_> = doc
            .keys
            .iter()
            .map(|k| {
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "state": k.state,
                    "created_at": rfc3339(Some(k.created_at)),
                    "activated_at": rfc3339(k.activated_at),
                    "retired_at": rfc3339(k.retired_at),
                    "promotable_at": rfc3339(promotable(k)),
                    "prunable_at": rfc3339(timing.prunable_at(k)),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(keys));
        return Ok(());
    }
    if doc.keys.is_empty() {
        println!("no keys in {}", source.name());
        return Ok(());
    }
    let when = |label: &str, at: OffsetDateTime| match at - now {
        left if left.is_positive() => format!("{label} in {}", lifecycle::human(left)),
        _ => format!("{label} now"),
    };
    let mut rows = Vec::new();
    for k in &doc.keys {
        let since = match k.state {
            KeyState::Pending => Some(k.created_at),
            KeyState::Active => k.activated_at,
            KeyState::Retired => k.retired_at,
        };
        let next = match (promotable(k), timing.prunable_at(k)) {
            (Some(at), _) => when("promotable", at),
            (_, Some(at)) => when("prunable", at),
            _ if k.state == KeyState::Active => "signing".to_owned(),
            _ => "kept: no retired_at".to_owned(),
        };
        let since = since
            .and_then(|t| t.replace_nanosecond(0).ok())
            .and_then(|t| rfc3339(Some(t)))
            .unwrap_or_default();
        rows.push(vec![
            k.kid.clone(),
            k.alg.to_string(),
            k.state.to_string(),
            since,
            next,
        ]);
    }
    println!(
        "{}",
        super::table::render(&["KID", "ALG", "STATE", "SINCE", "NEXT"], &rows)
    );
    Ok(())
}

/// Prints and audits each change, as the event `event` names for it.
fn report(changes: &[Transition], actor: &str, event: impl Fn(&Transition) -> &'static str) {
    for change in changes {
        change.audit(event(change), actor);
        println!("{change}");
    }
}

/// Who made a change, for the audit log: the local user and host.
fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(os_user)
        .unwrap_or_else(|| "unknown-user".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{user}@{host} (token-issuer keys)")
}

/// The name of the process's user from the system, for when the environment does not say
/// (cron, systemd, `env -i`): the real uid of `/proc/self/status` looked up in `/etc/passwd`.
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let name = passwd.as_deref().and_then(|p| {
        p.lines().find_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
    });
    Some(name.unwrap_or(format!("uid {uid}")))
}
