//! The key state machine: pending → active → retired → pruned, with the contract's timing
//! rules. Plain functions on the document, so every rule is tested without a source.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Alg, KeyError, KeyRecord, KeyState, KeysetDocument};
use crate::config::Settings;

/// How long keys must stay published; derived from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A pending key signs only after it has been published this long.
    pub publication_period: Duration,
    /// A retired key stays published this long after it stopped signing.
    pub retention: Duration,
}

impl Timing {
    /// Retention covers the longest access token, the JWKS caches that hold the key, and
    /// the reload interval during which instances may still sign with a retired key.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            publication_period: settings.key_publication_period,
            retention: settings.access_token_ttl + settings.jwks_max_age + settings.key_reload_interval,
        }
    }
}

impl Timing {
    /// When a key published (added) at `published_at` may start signing. Saturates, so a
    /// hand-edited date near the end of time cannot overflow.
    pub fn promotable_at(&self, published_at: OffsetDateTime) -> OffsetDateTime {
        published_at.saturating_add(signed(self.publication_period))
    }

    /// When a retired key may leave the JWKS; `None` for keys that are not retired.
    pub fn prunable_at(&self, key: &KeyRecord) -> Option<OffsetDateTime> {
        match key.state {
            KeyState::Retired => key.retired_at.map(|t| t.saturating_add(signed(self.retention))),
            KeyState::Pending | KeyState::Active => None,
        }
    }
}

fn signed(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// One key changing state; `None` means absent from the keyset. Audit events are made of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub kid: String,
    pub alg: Alg,
    pub from: Option<KeyState>,
    pub to: Option<KeyState>,
}

impl Transition {
    fn new(record: &KeyRecord, from: Option<KeyState>, to: Option<KeyState>) -> Self {
        Self {
            kid: record.kid.clone(),
            alg: record.alg,
            from,
            to,
        }
    }

    /// Logs this change as an audit event: kid, algorithm, states, and who made it.
    pub fn audit(&self, event: &'static str, actor: &str) {
        tracing::info!(
            target: "audit",
            event,
            kid = %self.kid,
            alg = %self.alg,
            from = state_name(self.from),
            to = state_name(self.to),
            actor,
        );
    }

    /// How a running instance's keyset changed between two loads.
    pub fn between(old: &KeysetDocument, new: &KeysetDocument) -> Vec<Transition> {
        let state_in =
            |doc: &KeysetDocument, kid: &str| doc.keys.iter().find(|k| k.kid == kid).map(|k| k.state);
        let mut changes: Vec<Transition> = new
            .keys
            .iter()
            .filter(|k| state_in(old, &k.kid) != Some(k.state))
            .map(|k| Transition::new(k, state_in(old, &k.kid), Some(k.state)))
            .collect();
        changes.extend(
            old.keys
                .iter()
                .filter(|k| state_in(new, &k.kid).is_none())
                .map(|k| Transition::new(k, Some(k.state), None)),
        );
        changes
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} -> {}",
            self.alg,
            self.kid,
            state_name(self.from),
            state_name(self.to)
        )
    }
}

/// A state for logs and output; `absent` when the key is not in the keyset.
fn state_name(state: Option<KeyState>) -> &'static str {
    state.map_or("absent", KeyState::as_str)
}

/// Adds a generated or imported key. When its algorithm has no active key it becomes active
/// at once (bootstrap: no token was ever signed that a verifier could miss); otherwise pending.
pub fn add(
    doc: &mut KeysetDocument,
    mut record: KeyRecord,
    now: OffsetDateTime,
) -> Result<Transition, KeyError> {
    if doc.keys.iter().any(|k| k.kid == record.kid) {
        return Err(KeyError::AlreadyPresent(record.kid));
    }
    let bootstrap = active_index(doc, record.alg).is_none();
    record.state = if bootstrap {
        KeyState::Active
    } else {
        KeyState::Pending
    };
    record.created_at = now;
    record.activated_at = bootstrap.then_some(now);
    record.retired_at = None;
    let change = Transition::new(&record, None, Some(record.state));
    doc.keys.push(record);
    Ok(change)
}

/// Promotes the oldest pending key of `alg` that has been published for the publication
/// period and retires the active one. Refuses, naming the time left, when none is old enough.
pub fn rotate(
    doc: &mut KeysetDocument,
    alg: Alg,
    timing: Timing,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, KeyError> {
    let oldest_pending = doc
        .keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.alg == alg && k.state == KeyState::Pending)
        .min_by_key(|(_, k)| k.created_at)
        .map(|(i, k)| (i, k.created_at));
    let Some((next, published_at)) = oldest_pending else {
        return Err(KeyError::NoPendingKey(alg));
    };
    let eligible_at = timing.promotable_at(published_at);
    if eligible_at > now {
        return Err(KeyError::NotYetEligible {
            alg,
            kid: doc.keys[next].kid.clone(),
            left: human(eligible_at - now),
        });
    }
    let mut changes = Vec::new();
    if let Some(current) = active_index(doc, alg) {
        let key = &mut doc.keys[current];
        key.state = KeyState::Retired;
        key.retired_at = Some(now);
        changes.push(Transition::new(
            key,
            Some(KeyState::Active),
            Some(KeyState::Retired),
        ));
    }
    let key = &mut doc.keys[next];
    key.state = KeyState::Active;
    key.activated_at = Some(now);
    changes.push(Transition::new(
        key,
        Some(KeyState::Pending),
        Some(KeyState::Active),
    ));
    Ok(changes)
}

/// Removes retired keys whose retention has passed. Returns what was removed and, for the
/// keys that must stay, when they may go.
pub fn prune(
    doc: &mut KeysetDocument,
    timing: Timing,
    now: OffsetDateTime,
) -> (Vec<Transition>, Vec<(String, String)>) {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    doc.keys.retain(|k| {
        if k.state != KeyState::Retired {
            return true;
        }
        // A retired key without a retirement time is kept: we cannot tell when it stopped signing.
        match timing.prunable_at(k) {
            Some(at) if at <= now => {
                removed.push(Transition::new(k, Some(KeyState::Retired), None));
                false
            }
            Some(at) => {
                kept.push((k.kid.clone(), human(at - now)));
                true
            }
            None => {
                kept.push((k.kid.clone(), "never: it has no retired_at".into()));
                true
            }
        }
    });
    (removed, kept)
}

/// The algorithm of the fresh key that revoking `kid` calls for: when it is the active key
/// and no pending key of its algorithm can take over (the rule [`revoke`] follows).
pub fn revocation_needs_new_key(doc: &KeysetDocument, kid: &str) -> Option<Alg> {
    let revoked = doc
        .keys
        .iter()
        .find(|k| k.kid == kid && k.state == KeyState::Active)?;
    let standby = doc
        .keys
        .iter()
        .any(|k| k.alg == revoked.alg && k.state == KeyState::Pending);
    (!standby).then_some(revoked.alg)
}

/// Emergency removal of a (compromised) key: it leaves the keyset, and so the JWKS, at once.
/// If it was active, the newest pending key of its algorithm takes over, or `replacement`
/// (a fresh key of the same algorithm) does when there is none.
pub fn revoke(
    doc: &mut KeysetDocument,
    kid: &str,
    replacement: impl FnOnce(Alg) -> Result<KeyRecord, KeyError>,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, KeyError> {
    let index = doc
        .keys
        .iter()
        .position(|k| k.kid == kid)
        .ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))?;
    // The replacement is made before anything changes: if it fails, the keyset is as it was.
    let fresh = revocation_needs_new_key(doc, kid).map(replacement).transpose()?;
    let revoked = doc.keys.remove(index);
    let mut changes = vec![Transition::new(&revoked, Some(revoked.state), None)];
    if revoked.state != KeyState::Active {
        return Ok(changes);
    }
    let newest_pending = doc
        .keys
        .iter_mut()
        .filter(|k| k.alg == revoked.alg && k.state == KeyState::Pending)
        .max_by_key(|k| k.created_at);
    match newest_pending {
        Some(key) => {
            key.state = KeyState::Active;
            key.activated_at = Some(now);
            changes.push(Transition::new(
                key,
                Some(KeyState::Pending),
                Some(KeyState::Active),
            ));
        }
        None => match fresh {
            Some(fresh) => changes.push(add(doc, fresh, now)?),
            None => return Err(KeyError::NoPendingKey(revoked.alg)),
        },
    }
    Ok(changes)
}

fn active_index(doc: &KeysetDocument, alg: Alg) -> Option<usize> {
    doc.keys
        .iter()
        .position(|k| k.alg == alg && k.state == KeyState::Active)
}

/// A duration as `2d 3h`, `3h 12m`, `4m 10s` or `9s`, rounded up to the smallest unit shown,
/// so that waiting the time named is always enough.
pub fn human(d: time::Duration) -> String {
    let seconds = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
    let ceil = |unit: i64| (seconds + unit - 1) / unit;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => {
            let m = ceil(60);
            format!("{}h {}m", m / 60, m % 60)
        }
        _ => {
            let h = ceil(3600);
            format!("{}d {}h", h / 24, h % 24)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_record, KeySet};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const TIMING: Timing = Timing {
        publication_period: Duration::from_secs(24 * 3600),
        retention: Duration::from_secs(1800),
    };

    fn key(alg: Alg) -> KeyRecord {
        generate_record(alg, 2048, KeyState::Pending, T0).expect("generate")
    }

    fn hours(h: i64) -> time::Duration {
        time::Duration::hours(h)
    }

    fn states(doc: &KeysetDocument) -> Vec<(String, KeyState)> {
        doc.keys.iter().map(|k| (k.kid.clone(), k.state)).collect()
    }

    #[test]
    fn the_first_key_of_an_algorithm_is_active_at_once_later_ones_wait() {
        let mut doc = KeysetDocument::default();
        let first = add(&mut doc, key(Alg::EdDsa), T0).expect("add");
        assert_eq!(first.to, Some(KeyState::Active));
        assert_eq!(doc.keys[0].activated_at, Some(T0));
        let second = add(&mut doc, key(Alg::EdDsa), T0).expect("add");
        assert_eq!(second.to, Some(KeyState::Pending));
        let other_alg = add(&mut doc, key(Alg::Rs256), T0).expect("add");
        assert_eq!(
            other_alg.to,
            Some(KeyState::Active),
            "one active key per algorithm"
        );
        let dup = doc.keys[0].clone();
        assert!(matches!(add(&mut doc, dup, T0), Err(KeyError::AlreadyPresent(_))));
        KeySet::from_document(&doc).expect("a valid keyset");
    }

    #[test]
    fn rotate_waits_for_the_publication_period_and_names_the_time_left() {
        let mut doc = KeysetDocument::default();
        assert!(matches!(
            rotate(&mut doc, Alg::EdDsa, TIMING, T0),
            Err(KeyError::NoPendingKey(Alg::EdDsa))
        ));
        add(&mut doc, key(Alg::EdDsa), T0).expect("active");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(1)).expect("pending");
        let before = states(&doc);
        let err = rotate(&mut doc, Alg::EdDsa, TIMING, T0 + hours(5)).expect_err("too early");
        assert!(err.to_string().contains("20h 0m"), "{err}");
        assert_eq!(states(&doc), before, "a refused rotation changes nothing");

        let now = T0 + hours(25);
        let changes = rotate(&mut doc, Alg::EdDsa, TIMING, now).expect("eligible");
        assert_eq!(changes.len(), 2);
        assert_eq!(doc.keys[0].state, KeyState::Retired);
        assert_eq!(doc.keys[0].retired_at, Some(now));
        assert_eq!(doc.keys[1].state, KeyState::Active);
        assert_eq!(doc.keys[1].activated_at, Some(now));
        KeySet::from_document(&doc).expect("still one active key");
    }

    #[test]
    fn rotate_promotes_the_oldest_eligible_pending_key_of_that_algorithm_only() {
        let mut doc = KeysetDocument::default();
        add(&mut doc, key(Alg::EdDsa), T0).expect("active");
        add(&mut doc, key(Alg::Rs256), T0).expect("active rsa");
        add(&mut doc, key(Alg::Rs256), T0).expect("pending rsa");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(2)).expect("newer pending");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(1)).expect("older pending");
        rotate(&mut doc, Alg::EdDsa, TIMING, T0 + hours(48)).expect("rotate");
        let active: Vec<_> = doc.keys.iter().filter(|k| k.state == KeyState::Active).collect();
        assert_eq!(active.len(), 2);
        assert_eq!(doc.keys[4].state, KeyState::Active, "the oldest pending");
        assert_eq!(doc.keys[3].state, KeyState::Pending);
        assert_eq!(doc.keys[1].state, KeyState::Active, "RS256 untouched");
        assert_eq!(doc.keys[2].state, KeyState::Pending);
    }

    #[test]
    fn prune_removes_only_retired_keys_past_retention() {
        let mut doc = KeysetDocument::default();
        add(&mut doc, key(Alg::EdDsa), T0).expect("active");
        add(&mut doc, key(Alg::EdDsa), T0).expect("pending");
        rotate(&mut doc, Alg::EdDsa, TIMING, T0 + hours(24)).expect("rotate");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(24)).expect("next pending");
        let retired = doc.keys[0].kid.clone();

        let (removed, kept) = prune(&mut doc, TIMING, T0 + hours(24) + time::Duration::minutes(10));
        assert!(removed.is_empty());
        assert_eq!(kept, vec![(retired.clone(), "20m 0s".to_owned())]);
        assert_eq!(doc.keys.len(), 3);

        let (removed, kept) = prune(&mut doc, TIMING, T0 + hours(24) + time::Duration::minutes(30));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].kid, retired);
        assert!(kept.is_empty());
        assert_eq!(doc.keys.len(), 2, "active and pending stay");
        assert!(doc.keys.iter().all(|k| k.state != KeyState::Retired));
    }

    #[test]
    fn revoking_the_active_key_hands_over_to_the_newest_pending_or_a_new_key() {
        let mut doc = KeysetDocument::default();
        add(&mut doc, key(Alg::EdDsa), T0).expect("active");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(1)).expect("older pending");
        add(&mut doc, key(Alg::EdDsa), T0 + hours(2)).expect("newer pending");
        let (active, newest) = (doc.keys[0].kid.clone(), doc.keys[2].kid.clone());
        assert_eq!(
            revocation_needs_new_key(&doc, &active),
            None,
            "a pending key can take over"
        );
        let unused = |_| -> Result<KeyRecord, KeyError> { panic!("a pending key exists") };
        let changes = revoke(&mut doc, &active, unused, T0 + hours(3)).expect("revoke");
        assert_eq!(changes[0].to, None);
        assert!(doc.keys.iter().all(|k| k.kid != active));
        let now_active = doc
            .keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .expect("active");
        assert_eq!(now_active.kid, newest, "the newest pending takes over at once");

        // Revoke the rest: the last active key is replaced by a fresh one.
        let pending = doc
            .keys
            .iter()
            .find(|k| k.state == KeyState::Pending)
            .expect("p")
            .kid
            .clone();
        revoke(&mut doc, &pending, unused, T0).expect("pending revoked, no replacement");
        let fresh = key(Alg::EdDsa);
        let fresh_kid = fresh.kid.clone();
        let changes = revoke(&mut doc, &newest, move |_| Ok(fresh), T0).expect("revoke");
        assert_eq!(changes.last().expect("replacement").to, Some(KeyState::Active));
        assert_eq!(states(&doc), vec![(fresh_kid, KeyState::Active)]);

        assert!(matches!(
            revoke(&mut doc, "nope", unused, T0),
            Err(KeyError::UnknownKid(_))
        ));
    }

    #[test]
    fn transitions_between_loads_name_every_change() {
        let mut old = KeysetDocument::default();
        add(&mut old, key(Alg::EdDsa), T0).expect("active");
        add(&mut old, key(Alg::EdDsa), T0).expect("pending");
        let mut new = old.clone();
        rotate(&mut new, Alg::EdDsa, TIMING, T0 + hours(24)).expect("rotate");
        let gone = new.keys.remove(0);
        let changes = Transition::between(&old, &new);
        assert_eq!(changes.len(), 2);
        assert!(changes.contains(&Transition::new(
            &new.keys[0],
            Some(KeyState::Pending),
            Some(KeyState::Active)
        )));
        assert!(changes.contains(&Transition::new(&gone, Some(KeyState::Active), None)));
        assert!(Transition::between(&new, &new).is_empty());
    }

    #[test]
    fn retention_covers_the_longest_token_cached_jwks_and_a_reload() {
        let settings = Settings::from_values([
            ("ISSUER_ACCESS_TOKEN_TTL", "10m"),
            ("ISSUER_JWKS_MAX_AGE", "5m"),
            ("ISSUER_KEY_RELOAD_INTERVAL", "1m"),
            ("ISSUER_KEY_PUBLICATION_PERIOD", "6m"),
        ])
        .expect("settings");
        let timing = Timing::from_settings(&settings);
        assert_eq!(timing.publication_period, Duration::from_secs(360));
        assert_eq!(timing.retention, Duration::from_secs(600 + 300 + 60));
        let mut retired = key(Alg::EdDsa);
        retired.state = KeyState::Retired;
        retired.retired_at = Some(T0);
        assert_eq!(
            timing.prunable_at(&retired),
            Some(T0 + time::Duration::seconds(960))
        );
        retired.retired_at = Some(OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31).expect("date"),
            time::Time::MIDNIGHT,
        ));
        assert!(
            timing.prunable_at(&retired).is_some(),
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn human_durations_round_up() {
        assert_eq!(human(time::Duration::milliseconds(500)), "1s");
        assert_eq!(human(time::Duration::seconds(250)), "4m 10s");
        assert_eq!(human(time::Duration::seconds(3 * 3600 + 12 * 60 + 5)), "3h 13m");
        assert_eq!(human(time::Duration::seconds(3 * 3600 + 12 * 60)), "3h 12m");
        assert_eq!(human(time::Duration::seconds(3600 * 24 - 1)), "24h 0m");
        assert_eq!(human(time::Duration::hours(51)), "2d 3h");
        assert_eq!(human(time::Duration::seconds(51 * 3600 + 1)), "2d 4h");
    }

    mod state_machine {
        //! Any sequence of operations, at any pace, keeps the rules verifiers rely on.
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashSet;
        use std::sync::OnceLock;

        /// Keys to add, generated once (RSA generation is slow); each can be added once.
        /// The last two RSA keys are kept for replacements on revocation.
        fn pool() -> &'static Vec<KeyRecord> {
            static POOL: OnceLock<Vec<KeyRecord>> = OnceLock::new();
            POOL.get_or_init(|| {
                let mut keys: Vec<KeyRecord> = (0..10).map(|_| key(Alg::EdDsa)).collect();
                keys.extend((0..5).map(|_| key(Alg::Rs256)));
                keys
            })
        }

        #[derive(Debug, Clone)]
        enum Op {
            Add(usize),
            Rotate(bool),
            Prune,
            /// The n-th key present, modulo how many there are.
            Revoke(usize),
            AdvanceMinutes(i64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0..13usize).prop_map(Op::Add),
                any::<bool>().prop_map(Op::Rotate),
                Just(Op::Prune),
                (0..13usize).prop_map(Op::Revoke),
                (1..3000i64).prop_map(Op::AdvanceMinutes),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn the_rules_hold_after_every_operation(ops in proptest::collection::vec(op(), 1..60)) {
                let mut doc = KeysetDocument::default();
                let mut now = T0;
                // kid → how it became active: by `rotate` (timing applies) or otherwise.
                let mut promoted = HashSet::new();
                let mut spare_rsa = pool().iter().skip(13);
                for op in ops {
                    match op {
                        Op::Add(i) => {
                            // A pruned or revoked key may come back: it starts over.
                            if add(&mut doc, pool()[i].clone(), now).is_ok() {
                                promoted.remove(&pool()[i].kid);
                            }
                        }
                        Op::Rotate(ed) => {
                            let alg = if ed { Alg::EdDsa } else { Alg::Rs256 };
                            if let Ok(changes) = rotate(&mut doc, alg, TIMING, now) {
                                for c in changes.iter().filter(|c| c.to == Some(KeyState::Active)) {
                                    promoted.insert(c.kid.clone());
                                }
                            }
                        }
                        Op::Prune => {
                            let before = doc.clone();
                            let (removed, _) = prune(&mut doc, TIMING, now);
                            for gone in removed {
                                let key = before.keys.iter().find(|k| k.kid == gone.kid).expect("was there");
                                let retired = key.retired_at.expect("only retired keys go");
                                prop_assert!(retired + signed(TIMING.retention) <= now,
                                    "{} pruned before its retention", gone.kid);
                            }
                        }
                        Op::Revoke(n) => {
                            if !doc.keys.is_empty() {
                                let kid = doc.keys[n % doc.keys.len()].kid.clone();
                                // Ed25519 replacements are cheap to make; RSA ones run out,
                                // and then the revocation must change nothing.
                                let before = doc.to_json();
                                let changes = revoke(&mut doc, &kid, |alg| match alg {
                                    Alg::EdDsa => Ok(key(Alg::EdDsa)),
                                    Alg::Rs256 => spare_rsa.next().cloned().ok_or(KeyError::NoPendingKey(alg)),
                                }, now);
                                match changes {
                                    Ok(changes) => {
                                        prop_assert!(!doc.keys.iter().any(|k| k.kid == kid));
                                        // An emergency takeover skips the publication period.
                                        for c in changes.iter().filter(|c| c.to == Some(KeyState::Active)) {
                                            promoted.remove(&c.kid);
                                        }
                                    }
                                    Err(_) => prop_assert_eq!(doc.to_json(), before, "a failed revocation changed the keyset"),
                                }
                            }
                        }
                        Op::AdvanceMinutes(m) => now += time::Duration::minutes(m),
                    }
                    for alg in Alg::ALL {
                        let of_alg: Vec<&KeyRecord> = doc.keys.iter().filter(|k| k.alg == alg).collect();
                        let active = of_alg.iter().filter(|k| k.state == KeyState::Active).count();
                        prop_assert!(active <= 1, "two active {alg} keys");
                        prop_assert!(of_alg.is_empty() || active == 1, "{alg} keys but none signs");
                    }
                    for key in &doc.keys {
                        if key.state == KeyState::Active && promoted.contains(&key.kid) {
                            let activated = key.activated_at.expect("active keys have activated_at");
                            prop_assert!(activated >= TIMING.promotable_at(key.created_at),
                                "{} signed before it was published for the publication period", key.kid);
                        }
                        prop_assert_eq!(key.state == KeyState::Retired, key.retired_at.is_some());
                    }
                    if !doc.keys.is_empty() {
                        prop_assert!(KeySet::from_document(&doc).is_ok(), "the keyset stays servable");
                    }
                }
            }
        }
    }
}
