//! Embeds `migrations/*.sql` in the binary (read by `store::migrations`), as sqlx's
//! `migrate!` would: that macro, like sqlx's derives, builds every database driver a second
//! time for the compiler. A `.sql` file not named `<version>_<description>.sql` fails the
//! build, as a bad version did with `migrate!`.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let unreadable = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        if !entry.file_type().map_err(unreadable)?.is_file() || path.extension() != Some("sql".as_ref()) {
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| format!("migration {n:?}: the name is not UTF-8"))?;
        let well_named = name
            .split_once('_')
            .is_some_and(|(version, _)| version.parse::<i64>().is_ok());
        if !well_named {
            return Err(format!("migration {name}: not named <version>_<description>.sql").into());
        }
        files.push((name, path));
    }
    files.sort();
    let mut list = String::from("&[\n");
    for (name, path) in &files {
        writeln!(
            list,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )?;
    }
    list.push(']');
    std::fs::write(Path::new(&std::env::var("OUT_DIR")?).join("migrations.rs"), list)?;
    Ok(())
}
