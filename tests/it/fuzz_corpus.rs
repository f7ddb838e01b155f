//! The committed fuzz corpus (`fuzz/corpus/TARGET/*`) replayed through the fuzz targets'
//! own code on every test run: what the fuzzer once found stays fixed. The instrumented
//! `cargo fuzz` run that finds new inputs is `scripts/fuzz`.

#[path = "../../fuzz/targets.rs"]
mod targets;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus input");
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            eprintln!("{target} panics on {}", path.display());
            std::panic::resume_unwind(panic);
        }
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}

#[test]
fn access_token_corpus() {
    replay("access_token", targets::access_token);
}

#[test]
fn keyset_document_corpus() {
    replay("keyset_document", targets::keyset_document);
}

#[test]
fn request_bodies_corpus() {
    replay("request_bodies", targets::request_bodies);
}
