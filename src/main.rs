fn main() -> std::process::ExitCode {
    release_large_blocks();
    token_issuer::cli::main()
}

/// glibc keeps a freed block of up to 32 MiB for reuse once it has seen one freed, each in
/// the arena of the thread that freed it; argon2's 19 MiB, hashed on whichever blocking
/// thread is free, then piled up to 250 MB after a login flood. Above 1 MiB, blocks are
/// mapped and returned to the system on free.
fn release_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread exists; mallopt only sets an allocator option.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
