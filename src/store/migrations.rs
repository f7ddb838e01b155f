//! The schema's migrations, embedded at build time (`build.rs`, which refuses a misnamed one)
//! and read the way sqlx reads a migrations folder: `<version>_<description>.sql`, applied in
//! version order, each in its own transaction unless it starts with `-- no-transaction`.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `migrations/`: (file name, contents), by name.
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async { parse(FILES) })
    }
}

/// The migrator of the embedded migrations.
pub async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}

fn parse(files: &[(&'static str, &'static str)]) -> Result<Vec<Migration>, BoxDynError> {
    let mut migrations = files
        .iter()
        .map(|&(name, sql)| {
            let (version, rest) = name
                .split_once('_')
                .ok_or_else(|| format!("migration {name} is not named <version>_<description>.sql"))?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("migration {name} has no integer version"))?;
            let kind = MigrationType::from_filename(rest);
            // The description as sqlx records it: the name without its suffix, `_` as spaces.
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            let no_tx = sql.starts_with("-- no-transaction");
            Ok(Migration::new(
                version,
                Cow::Owned(description),
                kind,
                Cow::Borrowed(sql),
                no_tx,
            ))
        })
        .collect::<Result<Vec<_>, BoxDynError>>()?;
    migrations.sort_by_key(|m| m.version);
    Ok(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_folder_is_embedded_numbered_without_gaps() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations/ is readable")
            .map(|e| e.expect("an entry").file_name().into_string().expect("UTF-8"))
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(embedded, on_disk);
        let migrations = parse(FILES).expect("the migrations parse");
        let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=on_disk.len() as i64).collect::<Vec<_>>());
        assert_eq!(
            migrations[0].sql,
            include_str!("../../migrations/0001_accounts_and_sessions.sql")
        );
    }

    /// Databases migrated by releases built with sqlx's `migrate!` recorded these. sqlx refuses
    /// to start on a database whose applied migration has another checksum or is missing.
    #[test]
    fn released_migrations_keep_the_description_and_checksum_recorded() {
        let recorded = [
            (1, "accounts and sessions", "386dc76077078aea81b4d4bbe67e7f3f5749c9286acb0964922803b208b66b38e9b560a0159067fbaf243993b07af36b"),
            (2, "clients", "f47061b54452f65a8ce9e4e5d10006a5c8277948fc01c8b87dd97d6a9704303b51e235414c3d4c9f0aa8e12c8c9796a5"),
            (3, "rate limits", "28f4793c6eff8a1a52fc3c3574b155360c33a2fd332c11080d351841d5fcb49a298112195736f53e215cddd7acec92b8"),
            (4, "refresh token expiry", "654e3418612d8c6a67d56a1c54836359f51e3b03920cb3bd2f660b75d7ee81dbae06837fd4370ce54be87de8cf1d5324"),
            (5, "typed schema", "44ccd1c5dd68b007282243a1677ad1eaa97a3482666b9f7ee0e11cf98c95f3325c617abed0513cdac858349cc1f93193"),
            (6, "authorization code", "467c3aa894d42476292a3046bbcd9a3ae0c87bbb84dcde4d7d1e54cb0e43b8b9ab2528d8f7de69aa01583bdd646c09d2"),
            (7, "change counters", "0dfbe58695748a691818d5a6ef90a5bb735759f72d59750c0f14881587e60c831a38eb1c4aa0c929eb1a179afaa884bc"),
        ];
        let migrations = parse(FILES).expect("the migrations parse");
        assert!(migrations.len() >= recorded.len(), "a released migration is gone");
        for ((version, description, checksum), migration) in recorded.iter().zip(&migrations) {
            let hex: String = migration.checksum.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                (migration.version, migration.description.as_ref(), hex.as_str()),
                (*version, *description, *checksum)
            );
            assert!(!migration.no_tx, "each runs in its transaction");
        }
    }

    #[test]
    fn a_misnamed_migration_is_refused() {
        assert!(parse(&[("accounts.sql", "")]).is_err());
        assert!(parse(&[("first_accounts.sql", "")]).is_err());
    }
}
