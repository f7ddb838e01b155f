//! Embeds `migrations/*.sql` in the binary (read by `store::migrations`), as sqlx's
//! `migrate!` would: that macro, like sqlx's derives, builds every database driver a second
//! time for the compiler.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names = std::fs::read_dir(&dir)?
        .map(|entry| {
            Ok(entry?
                .file_name()
                .into_string()
                .map_err(|n| format!("{n:?} is not UTF-8"))?)
        })
        .collect::<Result<Vec<String>, Box<dyn std::error::Error>>>()?;
    names.retain(|name| name.ends_with(".sql"));
    names.sort();
    let mut list = String::from("&[\n");
    for name in &names {
        let path = dir.join(name);
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
