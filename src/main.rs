// Events are allocated on parser threads and freed on others; mimalloc handles
// that pattern far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(tracejoin::cli::main());
}
