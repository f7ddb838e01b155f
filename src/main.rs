// mimalloc: glibc's allocator took a fifth of an EdDSA token's CPU, much of it waiting on the
// lock of an arena that another worker thread allocated from (BENCHMARKS.md, round 3).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    token_issuer::cli::main()
}

/// A constructor: runs before Rust's runtime allocates. Set in `main`, these options came too
/// late to shape the arena that serves the process (34 MiB resident at rest instead of 20).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RETURN_MEMORY_AT_ONCE: extern "C" fn() = return_memory_at_once;

/// mimalloc by default commits its arena up front and returns freed pages a second later:
/// 50 MiB resident at rest and 78 MiB after a login flood, where glibc held 20 and 49.
/// Committing on demand and returning at once keeps glibc's figures, at no cost in speed
/// that the bench can see. They take precedence over `MIMALLOC_*` environment variables.
#[cfg(target_os = "linux")]
extern "C" fn return_memory_at_once() {
    // mimalloc 3's `mi_option_e` (mimalloc.h); its Rust bindings name neither.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain option setters, which neither allocate nor need Rust's runtime; no other
    // thread exists yet.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}
