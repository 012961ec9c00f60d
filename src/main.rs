fn main() -> std::process::ExitCode {
    fehlzeiten::cli::main()
}
