fn main() -> std::process::ExitCode {
    token_issuer::cli::main()
}
