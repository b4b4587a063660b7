//! `switchyard-bench`: the benchmark of issue 8. `run` starts the simulator, the gateway and nginx
//! on loopback, drives them with its own open-model load generator, and writes every figure to a
//! JSON file and a plain-text table (BENCHMARKS.md says what each phase measures and how).
//!
//! The process re-executes itself under `taskset -c 1` (when `taskset` exists and there are two
//! cores or more), so the load generator, the simulator and nginx share core 1 and the gateway,
//! started with `taskset -c 0`, has core 0 to itself.

mod bench;
mod load;
mod procs;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// Set in the re-executed, pinned process.
const PINNED_ENV: &str = "SWITCHYARD_BENCH_PINNED";

#[derive(Parser)]
#[command(
    name = "switchyard-bench",
    about = "Benchmarks the Switchyard gateway against direct calls and nginx on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every phase and print the table.
    Run(Options),
}

/// Options of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Tiny durations and counts (seconds in all): checks that everything runs, asserts no figure.
    #[arg(long)]
    pub smoke: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench/results/latest.json")]
    pub out: PathBuf,
    /// The `switchyard` binary to benchmark (its `simulate` and `serve`).
    #[arg(long, default_value = "target/release/switchyard")]
    pub bin: PathBuf,
    /// The nginx binary (skipped with a warning when missing).
    #[arg(long, default_value = "nginx")]
    pub nginx: String,
    /// Do not keep the cores from idling (by default one SCHED_IDLE busy loop per core, which any
    /// real work preempts, keeps a virtual CPU from halting between requests; see BENCHMARKS.md).
    #[arg(long)]
    pub no_spin: bool,
    /// The core nginx runs on in every phase: 0 (default) places it like the gateway, on its own
    /// core away from the load generator and the simulator; 1 puts it beside them.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub nginx_core: u8,
    /// The phases to run, comma-separated (all by default).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "latency,streaming,throughput,memory,slow-db",
        value_parser = ["latency", "streaming", "throughput", "memory", "slow-db"]
    )]
    pub phases: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Cmd::Run(mut options) = cli.command;
    if options.nginx == "nginx"
        && !procs::runs("nginx", &["-v"])
        && procs::runs("/usr/sbin/nginx", &["-v"])
    {
        // Debian's nginx is outside a non-root PATH.
        options.nginx = "/usr/sbin/nginx".to_owned();
    }
    let (soft, hard) = procs::raise_nofile();
    let pinning = procs::Pinning {
        enabled: cores() >= 2 && procs::runs("taskset", &["-c", "1", "true"]),
    };
    if pinning.enabled && std::env::var_os(PINNED_ENV).is_none() {
        // Re-execute on core 1; children inherit it unless started with their own `taskset`.
        let status = std::env::current_exe().and_then(|exe| {
            Command::new("taskset")
                .arg("-c")
                .arg("1")
                .arg(exe)
                .args(std::env::args_os().skip(1))
                .env(PINNED_ENV, "1")
                .status()
        });
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
            Err(e) => {
                eprintln!("switchyard-bench: cannot re-execute under taskset: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !pinning.enabled {
        eprintln!(
            "switchyard-bench: WARNING: running unpinned (taskset missing or fewer than 2 cores); \
             the gateway shares cores with the load generator"
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench::run(options, pinning, (soft, hard))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("switchyard-bench: FAILED: requests errored (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("switchyard-bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Online CPUs of the machine (not of this process's affinity mask).
pub fn cores() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1)
}
