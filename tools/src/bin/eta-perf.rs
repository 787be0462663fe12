//! eta-perf: eta's benchmark, raw TCP and iWARP side by side in one run on loopback,
//! the two ends in two processes (this program spawns itself with `--serve` as the
//! peer). The program lives in the library, `eta_tools::perf`; run with `--help` for
//! the options and exit statuses.

fn main() -> std::process::ExitCode {
    eta_tools::perf::run::main()
}
