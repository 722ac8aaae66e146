fn main() {
    std::process::exit(tracejoin::cli::main());
}
