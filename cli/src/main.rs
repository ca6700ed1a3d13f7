//! The `berth` binary: everything lives in the library (`berth_cli`).

fn main() {
    std::process::exit(berth_cli::main_entry());
}
