//! The phases of a run, in order: set-up (simulator, account and key through the CLI, gateway,
//! nginx), added latency at fixed rates, streaming, maximum throughput on one core, memory (a
//! sustained run for leaks, then thousands of open streams), and the slow database.
//!
//! Every phase measures direct (to the simulator), nginx and the gateway in the same run, each
//! after a warm-up that is not counted; the latency, streaming and slow-database measurements
//! take turns in rounds, so a slow drift of the machine touches every target alike.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::json;

use crate::load::{self, ClosedRun, OpenRun, Sender, StreamRun, Target};
use crate::procs::{self, Pinning, Proc};
use crate::report::{self, Results};
use crate::Options;

/// The gateway's core (and nginx's, by default); the load generator and the simulator run on
/// the other one.
const GATEWAY_CORE: usize = 0;

/// The simulator's upstream every target reaches (the gateway through `[providers.openai]`).
const UPSTREAM: &str = "openai";

/// The API key the simulator is sent directly and through nginx (it accepts any bearer).
const SIM_KEY: &str = "sim-key";

/// Durations, rates and counts of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub smoke: bool,
    pub warmup_s: f64,
    pub rates: Vec<f64>,
    pub latency_s: f64,
    pub stream_rate: f64,
    pub stream_s: f64,
    /// Simulator pacing for the streaming phase.
    pub stream_tokens_per_s: u64,
    pub stream_output_tokens: u64,
    /// Connection counts of the closed loop; the best is the throughput figure.
    pub closed_connections: Vec<usize>,
    pub closed_s: f64,
    pub sustained_rate: f64,
    pub sustained_warmup_s: f64,
    pub sustained_s: f64,
    pub held_streams: usize,
    pub held_open_rate: f64,
    pub slow_db_delay_ms: u64,
    pub slow_db_rate: f64,
    /// Pause before reading memory, so queued work (record batches, closing connections) settles.
    pub settle_s: f64,
    /// Rounds the latency, streaming and slow-database measurements are split into, the targets
    /// taking turns.
    pub rounds: usize,
}

impl Plan {
    fn new(smoke: bool) -> Plan {
        if smoke {
            Plan {
                smoke,
                warmup_s: 0.2,
                rates: vec![100.0, 400.0],
                latency_s: 0.5,
                stream_rate: 50.0,
                stream_s: 0.5,
                stream_tokens_per_s: 50,
                stream_output_tokens: 20,
                closed_connections: vec![16],
                closed_s: 0.5,
                sustained_rate: 200.0,
                sustained_warmup_s: 0.2,
                sustained_s: 1.0,
                held_streams: 200,
                held_open_rate: 400.0,
                slow_db_delay_ms: 50,
                slow_db_rate: 400.0,
                settle_s: 0.3,
                rounds: 2,
            }
        } else {
            Plan {
                smoke,
                warmup_s: 1.0,
                rates: vec![500.0, 2000.0],
                latency_s: 8.0,
                stream_rate: 250.0,
                stream_s: 8.0,
                stream_tokens_per_s: 50,
                stream_output_tokens: 20,
                closed_connections: vec![16, 64],
                closed_s: 5.0,
                sustained_rate: 1000.0,
                sustained_warmup_s: 5.0,
                sustained_s: 40.0,
                held_streams: 10_000,
                held_open_rate: 2500.0,
                slow_db_delay_ms: 50,
                slow_db_rate: 2000.0,
                settle_s: 1.5,
                rounds: 4,
            }
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Everything started for a run.
struct Rig {
    pinning: Pinning,
    bin: PathBuf,
    dir: PathBuf,
    sim: Proc,
    sim_url: String,
    gateway: Proc,
    gateway_url: String,
    /// The gateway's config file (the normal one).
    config: PathBuf,
    key: String,
    nginx: Option<(Proc, String)>,
    /// SCHED_IDLE busy loops, one per core (stopped last, with the rig).
    spinners: Vec<Proc>,
}

impl Rig {
    fn direct(&self) -> anyhow::Result<Target> {
        Target::new(
            "direct",
            &format!("{}/{UPSTREAM}/v1/chat/completions", self.sim_url),
            SIM_KEY,
            "gpt-4o-mini",
        )
    }

    fn nginx_target(&self, url: &str) -> anyhow::Result<Target> {
        Target::new(
            "nginx",
            &format!("{url}/{UPSTREAM}/v1/chat/completions"),
            SIM_KEY,
            "gpt-4o-mini",
        )
    }

    fn gateway_target(&self) -> anyhow::Result<Target> {
        Target::new(
            "gateway",
            &format!("{}/api/v1/chat/completions", self.gateway_url),
            &self.key,
            "openai/gpt-4o-mini",
        )
    }

    /// direct, nginx (when installed), gateway.
    fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let mut targets = vec![self.direct()?];
        if let Some((_, url)) = &self.nginx {
            targets.push(self.nginx_target(url)?);
        }
        targets.push(self.gateway_target()?);
        Ok(targets)
    }

    async fn behaviour(
        &self,
        ttft_ms: u64,
        tokens_per_s: u64,
        output_tokens: u64,
    ) -> anyhow::Result<()> {
        let url = format!("{}/_sim/{UPSTREAM}/behaviour", self.sim_url);
        let body = json!({"ttft_ms": ttft_ms, "tokens_per_s": tokens_per_s, "output_tokens": output_tokens});
        load::post_json(&url, &body).await
    }

    /// Stops the gateway and starts a fresh one with `config` (same database, so the same key).
    fn restart_gateway(&mut self, config: &Path, name: &str) -> anyhow::Result<()> {
        self.gateway.stop();
        let (gateway, url) = start_gateway(self.pinning, &self.bin, &self.dir, config, name)?;
        self.gateway = gateway;
        self.gateway_url = url;
        Ok(())
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        for proc in [&mut self.sim, &mut self.gateway] {
            if !proc.running() {
                bail!("{} exited:\n{}", proc.name, proc.log_tail());
            }
        }
        Ok(())
    }
}

/// Runs every phase; `Ok(false)` when requests errored massively.
pub async fn run(options: Options, pinning: Pinning, nofile: (u64, u64)) -> anyhow::Result<bool> {
    let started = Instant::now();
    let plan = Plan::new(options.smoke);
    let bin = std::fs::canonicalize(&options.bin).with_context(|| {
        format!(
            "the switchyard binary {} (build it first)",
            options.bin.display()
        )
    })?;
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let machine = report::machine(pinning, nofile, &options.nginx, options.nginx_core);
    eprintln!(
        "switchyard-bench: {} run, {} ({} cores), {} (logs in {})",
        if plan.smoke { "smoke" } else { "full" },
        machine.cpu_model,
        machine.cores,
        machine.pinning,
        dir.display()
    );
    let mut rig = set_up(&options, pinning, &bin, &dir).await?;
    let mut results = Results::new(machine, plan.clone());
    results.machine.idle_spinners = !rig.spinners.is_empty();
    results.memory.rss_start_kib = rig.gateway.rss_kib().unwrap_or(0);

    let phase = |name: &str| eprintln!("[{:>5.1} s] {name}", started.elapsed().as_secs_f64());
    let wanted = |name: &str| options.phases.iter().any(|p| p == name);
    if wanted("latency") {
        phase("added latency");
        latency_phase(&mut rig, &plan, &mut results).await?;
        rig.check_running()?;
    }
    if wanted("streaming") {
        phase("streaming");
        streaming_phase(&mut rig, &plan, &mut results).await?;
        rig.check_running()?;
    }
    if wanted("throughput") {
        phase("throughput");
        throughput_phase(&mut rig, &plan, &options, &mut results).await?;
        rig.check_running()?;
    }
    if wanted("memory") {
        phase("memory");
        memory_phase(&mut rig, &plan, nofile.0, &mut results).await?;
        rig.check_running()?;
    }
    if wanted("slow-db") {
        phase("slow database");
        slow_db_phase(&mut rig, &plan, &mut results).await?;
        rig.check_running()?;
    }
    phase("done");

    results.seconds = started.elapsed().as_secs_f64();
    results.evaluate();
    drop(rig);
    let table = results.table();
    println!("{table}");
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", options.out.display()))?;
    eprintln!("switchyard-bench: results in {}", options.out.display());
    let healthy = results.healthy();
    if healthy {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(healthy)
}

/// Starts the simulator, creates the account, credits and key with the CLI, starts the gateway
/// and nginx.
async fn set_up(
    options: &Options,
    pinning: Pinning,
    bin: &Path,
    dir: &Path,
) -> anyhow::Result<Rig> {
    let mut sim_cmd = pinning.command(None, bin);
    sim_cmd.args(["simulate", "--listen", "127.0.0.1:0"]);
    let (sim, sim_url) = Proc::start(
        "simulator",
        sim_cmd,
        &dir.join("simulator.log"),
        Some("listening on"),
    )?;
    let sim_url = sim_url.unwrap_or_default();
    let config = write_config(dir, &sim_url, None)?;
    let account = cli(bin, &["accounts", "create", "--name", "bench"], &config)?;
    let account = account["id"]
        .as_str()
        .context("accounts create: no id")?
        .to_owned();
    cli(
        bin,
        &[
            "credits",
            "grant",
            "--account",
            &account,
            "--amount",
            "1000",
        ],
        &config,
    )?;
    let key = cli(
        bin,
        &["keys", "create", "--account", &account, "--name", "bench"],
        &config,
    )?;
    let key = key["key"]
        .as_str()
        .context("keys create: no key")?
        .to_owned();
    let (gateway, gateway_url) = start_gateway(pinning, bin, dir, &config, "gateway")?;
    let nginx = if procs::runs(&options.nginx, &["-v"]) {
        let core = usize::from(options.nginx_core);
        let name = format!("nginx-core{core}");
        Some(start_nginx(
            pinning,
            &options.nginx,
            dir,
            &sim_url,
            Some(core),
            &name,
        )?)
    } else {
        eprintln!();
        eprintln!(
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        );
        eprintln!(
            "!!! nginx is not installed: SKIPPING every nginx measurement and ratio.     !!!"
        );
        eprintln!(
            "!!! Install it (apt-get install nginx-light) or run bench/run.sh.            !!!"
        );
        eprintln!(
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        );
        eprintln!();
        None
    };
    let spinners = start_spinners(options, pinning, dir)?;
    let rig = Rig {
        spinners,
        pinning,
        bin: bin.to_owned(),
        dir: dir.to_owned(),
        sim,
        sim_url,
        gateway,
        gateway_url,
        config,
        key,
        nginx,
    };
    rig.behaviour(0, 0, 16).await?;
    Ok(rig)
}

/// One busy loop per core at the SCHED_IDLE policy (`chrt -i 0`), which the scheduler preempts as
/// soon as anything else is runnable: it keeps virtual CPUs from halting between requests, whose
/// wake-up through the hypervisor otherwise adds milliseconds at p99 to every target alike.
fn start_spinners(options: &Options, pinning: Pinning, dir: &Path) -> anyhow::Result<Vec<Proc>> {
    if options.no_spin || !pinning.enabled || !procs::runs("chrt", &["-i", "0", "true"]) {
        return Ok(Vec::new());
    }
    (0..2)
        .map(|core| {
            let mut command = std::process::Command::new("chrt");
            command
                .args(["-i", "0", "taskset", "-c", &core.to_string()])
                .args(["sh", "-c", "while :; do :; done"]);
            let name = format!("spinner-core{core}");
            Proc::start(&name, command, &dir.join(format!("{name}.log")), None).map(|(p, _)| p)
        })
        .collect()
}

/// The gateway's config: SQLite in `dir`, one OpenAI-compatible provider at the simulator, and
/// optionally a store write delay.
fn write_config(dir: &Path, sim_url: &str, write_delay_ms: Option<u64>) -> anyhow::Result<PathBuf> {
    let name = if write_delay_ms.is_some() {
        "switchyard-slow-db.toml"
    } else {
        "switchyard.toml"
    };
    let path = dir.join(name);
    let mut text = format!(
        "database = \"sqlite://{}/bench.db\"\n\n[providers.openai]\nbase_url = \"{sim_url}/{UPSTREAM}/v1\"\napi_key = \"{SIM_KEY}\"\n",
        dir.display()
    );
    if let Some(ms) = write_delay_ms {
        text.push_str(&format!("\n[testing]\nstore_write_delay_ms = {ms}\n"));
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The environment of the gateway and the CLI: no provider keys or SWITCHYARD_* settings from
/// the caller's environment, so only the config file counts.
fn clean_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.ends_with("_API_KEY") || name_str.starts_with("SWITCHYARD_") {
            command.env_remove(&name);
        }
    }
}

/// Runs a `switchyard` admin command with `--config` and `--json`; returns its JSON output.
fn cli(bin: &Path, args: &[&str], config: &Path) -> anyhow::Result<serde_json::Value> {
    let mut command = std::process::Command::new(bin);
    command.args(args).arg("--config").arg(config).arg("--json");
    clean_env(&mut command);
    let out = command
        .output()
        .with_context(|| format!("running switchyard {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "switchyard {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("switchyard {}: output is not JSON", args.join(" ")))
}

fn start_gateway(
    pinning: Pinning,
    bin: &Path,
    dir: &Path,
    config: &Path,
    name: &str,
) -> anyhow::Result<(Proc, String)> {
    let mut command = pinning.command(Some(GATEWAY_CORE), bin);
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"]);
    clean_env(&mut command);
    let (proc, url) = Proc::start(
        name,
        command,
        &dir.join(format!("{name}.log")),
        Some("listening on"),
    )?;
    Ok((proc, url.unwrap_or_default()))
}

/// Starts nginx as a plain reverse proxy to the simulator (upstream keepalive, HTTP/1.1, no
/// buffering, no access log, one worker) on a free loopback port, on `core` or inheriting this
/// process's core.
fn start_nginx(
    pinning: Pinning,
    nginx: &str,
    dir: &Path,
    sim_url: &str,
    core: Option<usize>,
    name: &str,
) -> anyhow::Result<(Proc, String)> {
    let prefix = dir.join(name);
    std::fs::create_dir_all(prefix.join("tmp"))?;
    let port = procs::free_port()?;
    let upstream = sim_url.trim_start_matches("http://");
    let (_, hard) = procs::nofile_limits();
    let nofile = hard.min(1 << 20);
    let p = prefix.display();
    let conf = format!(
        r#"worker_processes 1;
worker_rlimit_nofile {nofile};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream simulator {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://simulator;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#,
        connections = nofile.saturating_sub(64).max(1024),
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut command = pinning.command(core, Path::new(nginx));
    command
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .args(["-g", "daemon off;"]);
    let (mut proc, _) = Proc::start(name, command, &prefix.join("stderr.log"), None)?;
    let addr = format!("127.0.0.1:{port}");
    procs::wait_listening(&addr, &mut proc)?;
    Ok((proc, format!("http://{addr}")))
}

/// Added latency at fixed rates, non-streaming.
async fn latency_phase(rig: &mut Rig, plan: &Plan, results: &mut Results) -> anyhow::Result<()> {
    rig.behaviour(0, 0, 16).await?;
    for &rate in &plan.rates {
        let runs = measure_interleaved(&rig.targets()?, rate, plan).await;
        for (name, run) in &runs {
            eprintln!(
                "latency {rate:>6} req/s {name:<8} p50 {} p99 {} ms ({} ok, {} errors; loader lateness p50 {} p99 {} ms)",
                report::ms(run.latency.p50_us),
                report::ms(run.latency.p99_us),
                run.latency.count,
                run.latency.errors,
                report::ms(run.loader_lateness.p50_us),
                report::ms(run.loader_lateness.p99_us),
            );
        }
        results.add_rate(rate, runs);
    }
    Ok(())
}

/// Non-streaming requests at `rate` to every target in turn, in [`Plan::rounds`] rounds that
/// together last [`Plan::latency_s`] per target, after a warm-up of each (not counted): slow
/// drifts of the machine then touch every target alike. One connection pool per target.
async fn measure_interleaved(
    targets: &[Target],
    rate: f64,
    plan: &Plan,
) -> Vec<(&'static str, OpenRun)> {
    let mut pools = Vec::new();
    for target in targets {
        let sender = Sender::pool();
        let body = target.body(false, 16);
        load::open_loop(&sender, target, &body, rate, secs(plan.warmup_s)).await;
        pools.push((sender, body, load::OpenRaw::default()));
    }
    let round = secs(plan.latency_s / plan.rounds as f64);
    for _ in 0..plan.rounds {
        for (target, (sender, body, raw)) in targets.iter().zip(&mut pools) {
            raw.merge(load::open_loop(sender, target, body, rate, round).await);
        }
    }
    targets
        .iter()
        .zip(pools)
        .map(|(target, (_, _, raw))| (target.name, raw.summary()))
        .collect()
}

/// Streaming: time to first token and gaps between chunks with the simulator paced; the targets
/// interleaved in rounds like [`measure_interleaved`].
async fn streaming_phase(rig: &mut Rig, plan: &Plan, results: &mut Results) -> anyhow::Result<()> {
    rig.behaviour(0, plan.stream_tokens_per_s, plan.stream_output_tokens)
        .await?;
    let targets = rig.targets()?;
    let mut pools = Vec::new();
    for target in &targets {
        let sender = Sender::pool();
        let body = target.body(true, 64);
        load::open_loop_streams(
            &sender,
            target,
            &body,
            plan.stream_rate,
            secs(plan.warmup_s),
        )
        .await;
        pools.push((sender, body, load::StreamRaw::default()));
    }
    let round = secs(plan.stream_s / plan.rounds as f64);
    for _ in 0..plan.rounds {
        for (target, (sender, body, raw)) in targets.iter().zip(&mut pools) {
            raw.merge(load::open_loop_streams(sender, target, body, plan.stream_rate, round).await);
        }
    }
    let mut runs: Vec<(&'static str, StreamRun)> = Vec::new();
    for (target, (_, _, raw)) in targets.iter().zip(pools) {
        let run = raw.summary();
        eprintln!(
            "streaming {:<8} TTFT p50 {} p99 {} ms, gap p50 {} p99 {} ms ({} streams, {:.1} chunks each, {} errors)",
            target.name,
            report::ms(run.ttft.p50_us),
            report::ms(run.ttft.p99_us),
            report::ms(run.gap.p50_us),
            report::ms(run.gap.p99_us),
            run.streams,
            run.chunks_per_stream,
            run.ttft.errors
        );
        runs.push((target.name, run));
    }
    results.set_streaming(runs);
    rig.behaviour(0, 0, 16).await?;
    Ok(())
}

/// CPU seconds used by the gateway or nginx, the simulator and this process during a run.
struct CpuWatch {
    ticks_per_s: f64,
    start: Instant,
    target: u64,
    simulator: u64,
    loader: u64,
}

impl CpuWatch {
    fn start(target: &Proc, sim: &Proc) -> CpuWatch {
        CpuWatch {
            ticks_per_s: procs::clock_ticks_per_s() as f64,
            start: Instant::now(),
            target: target.cpu_ticks(),
            simulator: sim.cpu_ticks(),
            loader: own_ticks(),
        }
    }

    /// Percent of one core used by (target, simulator, load generator).
    fn finish(&self, target: &Proc, sim: &Proc) -> (f64, f64, f64) {
        let wall = self.start.elapsed().as_secs_f64() * self.ticks_per_s / 100.0;
        let pct = |now: u64, then: u64| now.saturating_sub(then) as f64 / wall;
        (
            pct(target.cpu_ticks(), self.target),
            pct(sim.cpu_ticks(), self.simulator),
            pct(own_ticks(), self.loader),
        )
    }
}

fn own_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// One closed-loop throughput measurement with the CPU each party used.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    #[serde(flatten)]
    pub run: ClosedRun,
    /// Percent of one core used by the proxy under test (pinned to core 0).
    pub cpu_percent: f64,
    /// Percent of one core used by the simulator and by the load generator (both on core 1).
    pub simulator_cpu_percent: f64,
    pub loader_cpu_percent: f64,
    /// Requests per second of the proxy's CPU time: what one fully busy core would serve when
    /// the proxy is not the bottleneck (the load generator and simulator share core 1).
    pub rps_per_busy_core: f64,
    /// Percent of each core's time stolen by the hypervisor during the run.
    pub steal_percent: [f64; 2],
}

async fn measure_closed(
    target: &Target,
    proc: &Proc,
    sim: &Proc,
    plan: &Plan,
    connections: usize,
) -> Throughput {
    let sender = Sender::pool();
    let body = target.body(false, 16);
    load::closed_loop(&sender, target, &body, connections, secs(plan.warmup_s)).await;
    let watch = CpuWatch::start(proc, sim);
    let steal = procs::StealWatch::start();
    let run = load::closed_loop(&sender, target, &body, connections, secs(plan.closed_s)).await;
    let (cpu_percent, simulator_cpu_percent, loader_cpu_percent) = watch.finish(proc, sim);
    let (stolen, seconds) = steal.finish();
    let per_core = seconds.max(1e-9) * procs::clock_ticks_per_s() as f64 / 100.0;
    let steal_percent = [stolen[0] as f64 / per_core, stolen[1] as f64 / per_core];
    eprintln!(
        "throughput {:<8} {connections:>3} connections: {:.0} req/s ({} errors), CPU: {} {cpu_percent:.0}%, simulator {simulator_cpu_percent:.0}%, loader {loader_cpu_percent:.0}%",
        target.name, run.rps, run.latency.errors, proc.name
    );
    Throughput {
        rps_per_busy_core: run.rps / (cpu_percent / 100.0).max(0.01),
        steal_percent,
        run,
        cpu_percent,
        simulator_cpu_percent,
        loader_cpu_percent,
    }
}

/// Maximum throughput: a closed loop against nginx on core 0, then the gateway on core 0.
async fn throughput_phase(
    rig: &mut Rig,
    plan: &Plan,
    options: &Options,
    results: &mut Results,
) -> anyhow::Result<()> {
    rig.behaviour(0, 0, 16).await?;
    if let Some((nginx, url)) = &rig.nginx {
        // Throughput compares one core with one core: nginx on the gateway's core.
        let extra = if usize::from(options.nginx_core) == GATEWAY_CORE || !rig.pinning.enabled {
            None
        } else {
            Some(start_nginx(
                rig.pinning,
                &options.nginx,
                &rig.dir,
                &rig.sim_url,
                Some(GATEWAY_CORE),
                "nginx-throughput",
            )?)
        };
        let (nginx, url) = extra.as_ref().map_or((nginx, url), |(p, u)| (p, u));
        let target = rig.nginx_target(url)?;
        for &connections in &plan.closed_connections {
            let run = measure_closed(&target, nginx, &rig.sim, plan, connections).await;
            results.throughput.nginx_runs.push(run);
        }
    }
    let target = rig.gateway_target()?;
    for &connections in &plan.closed_connections {
        let run = measure_closed(&target, &rig.gateway, &rig.sim, plan, connections).await;
        results.throughput.gateway_runs.push(run);
    }
    Ok(())
}

/// Memory: a sustained run (RSS before and after), then streams held open.
async fn memory_phase(
    rig: &mut Rig,
    plan: &Plan,
    fd_limit: u64,
    results: &mut Results,
) -> anyhow::Result<()> {
    rig.behaviour(0, 0, 16).await?;
    let target = rig.gateway_target()?;
    let sender = Sender::pool();
    let body = target.body(false, 16);
    load::open_loop(
        &sender,
        &target,
        &body,
        plan.sustained_rate,
        secs(plan.sustained_warmup_s),
    )
    .await;
    tokio::time::sleep(secs(plan.settle_s)).await;
    let before = rig.gateway.rss_kib().unwrap_or(0);
    // RSS sampled a dozen times during the run: a leak grows steadily, a warming cache levels off.
    let pid = rig.gateway.pid;
    let running = std::cell::Cell::new(true);
    let sampler = async {
        let started = Instant::now();
        let mut series = Vec::new();
        while running.get() {
            tokio::time::sleep(secs(plan.sustained_s / 12.0)).await;
            let rss = procs::rss_kib(pid).unwrap_or(0);
            series.push((started.elapsed().as_secs_f64(), rss));
        }
        series
    };
    let load = async {
        let run = load::open_loop(
            &sender,
            &target,
            &body,
            plan.sustained_rate,
            secs(plan.sustained_s),
        )
        .await;
        running.set(false);
        run.summary()
    };
    let (run, rss_series_kib) = tokio::join!(load, sampler);
    tokio::time::sleep(secs(plan.settle_s)).await;
    let after = rig.gateway.rss_kib().unwrap_or(0);
    eprintln!(
        "sustained {} req/s for {} s: gateway RSS {} -> {} MiB ({} errors)",
        plan.sustained_rate,
        plan.sustained_s,
        report::mib(before),
        report::mib(after),
        run.latency.errors
    );
    results.memory.sustained = Some(report::Sustained {
        rate: plan.sustained_rate,
        seconds: plan.sustained_s,
        rss_before_kib: before,
        rss_after_kib: after,
        rss_series_kib,
        run,
    });
    drop(sender);

    // Open streams: the simulator paces one token a second, so streams stay open.
    rig.behaviour(0, 1, 600).await?;
    let body = target.body(true, 1000);
    // HTTP/1.1 takes a client and an upstream connection per stream in the gateway.
    let fit = usize::try_from(fd_limit.saturating_sub(300) / 2).unwrap_or(usize::MAX);
    let h1_count = plan.held_streams.min(fit);
    if h1_count < plan.held_streams {
        eprintln!(
            "memory: the open-files limit ({fd_limit}) fits {h1_count} HTTP/1.1 streams through the \
             gateway (two descriptors each); {} streams go over HTTP/2 from the client as well",
            plan.held_streams
        );
    }
    // Freed memory is not given back to the system, so each measurement gets a fresh gateway,
    // warmed up with plain requests first.
    let config = rig.config.clone();
    rig.restart_gateway(&config, "gateway-streams-http1")?;
    warm_gateway(rig, plan).await?;
    let target = rig.gateway_target()?;
    let h1 = hold(rig, &target, &body, Sender::pool(), "http1", h1_count, plan).await?;
    results.memory.streams.push(h1);
    if h1_count < plan.held_streams {
        rig.restart_gateway(&config, "gateway-streams-h2")?;
        warm_gateway(rig, plan).await?;
        let target = rig.gateway_target()?;
        let addr = rig.gateway_url.trim_start_matches("http://").parse()?;
        let connections = plan.held_streams.div_ceil(load::H2_STREAMS_PER_CONNECTION);
        let sender = Sender::h2(addr, connections).await?;
        let h2 = hold(rig, &target, &body, sender, "h2", plan.held_streams, plan).await?;
        results.memory.streams.push(h2);
    }
    rig.behaviour(0, 0, 16).await?;
    Ok(())
}

/// Plain requests at the sustained rate for the warm-up time, so the gateway's caches and pools
/// are in use before its memory is read.
async fn warm_gateway(rig: &mut Rig, plan: &Plan) -> anyhow::Result<()> {
    rig.behaviour(0, 0, 16).await?;
    let target = rig.gateway_target()?;
    let body = target.body(false, 16);
    load::open_loop(
        &Sender::pool(),
        &target,
        &body,
        plan.sustained_rate,
        secs(plan.warmup_s),
    )
    .await;
    rig.behaviour(0, 1, 600).await
}

/// Opens `count` streams, waits until all are open, reads the gateway's RSS and descriptors,
/// closes them and reads the RSS again.
async fn hold(
    rig: &mut Rig,
    target: &Target,
    body: &bytes::Bytes,
    sender: Sender,
    transport: &'static str,
    count: usize,
    plan: &Plan,
) -> anyhow::Result<report::Held> {
    wait_fds_settle(&rig.gateway).await;
    let rss_before = rig.gateway.rss_kib().unwrap_or(0);
    let held = load::open_streams(&sender, target, body, count, plan.held_open_rate);
    let deadline =
        Instant::now() + Duration::from_secs(60) + secs(count as f64 / plan.held_open_rate);
    loop {
        let (open, failed) = held.counts();
        if open + failed >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(secs(plan.settle_s)).await;
    let (open, failed) = held.counts();
    let rss = rig.gateway.rss_kib().unwrap_or(0);
    let gateway_fds = rig.gateway.fds();
    let simulator_fds = rig.sim.fds();
    if let Some(e) = held
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        eprintln!("  streams: first error: {e}");
    }
    held.close().await;
    drop(sender);
    tokio::time::sleep(secs(plan.settle_s)).await;
    wait_fds_settle(&rig.gateway).await;
    let rss_after = rig.gateway.rss_kib().unwrap_or(0);
    eprintln!(
        "streams ({transport}): {open} of {count} open ({failed} failed), gateway RSS {} -> {} MiB, {gateway_fds} fds; after closing {} MiB",
        report::mib(rss_before),
        report::mib(rss),
        report::mib(rss_after)
    );
    Ok(report::Held::new(
        transport,
        count,
        open,
        failed,
        rss_before,
        rss,
        rss_after,
        gateway_fds,
        simulator_fds,
    ))
}

/// Waits (up to 20 s) until the gateway holds fewer than 200 descriptors: the last streams'
/// connections are closed.
async fn wait_fds_settle(proc: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while proc.fds() > 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The slow database: the gateway restarted with every batched write delayed, then the
/// 2000 req/s measurement again (direct first, for the noise between the two times).
async fn slow_db_phase(rig: &mut Rig, plan: &Plan, results: &mut Results) -> anyhow::Result<()> {
    rig.behaviour(0, 0, 16).await?;
    let rate = plan.slow_db_rate;
    // Two fresh gateways on core 0, one with the normal database and one with slow writes, taking
    // turns with direct (only one is loaded at a time; both use the same database file).
    let config = rig.config.clone();
    rig.restart_gateway(&config, "gateway-normal-db")?;
    let slow_config = write_config(&rig.dir, &rig.sim_url, Some(plan.slow_db_delay_ms))?;
    let (slow_proc, slow_url) = start_gateway(
        rig.pinning,
        &rig.bin,
        &rig.dir,
        &slow_config,
        "gateway-slow-db",
    )?;
    let url = |base: &str| format!("{base}/api/v1/chat/completions");
    let targets = [
        rig.direct()?,
        Target::new(
            "normal-db",
            &url(&rig.gateway_url),
            &rig.key,
            "openai/gpt-4o-mini",
        )?,
        Target::new("slow-db", &url(&slow_url), &rig.key, "openai/gpt-4o-mini")?,
    ];
    let runs = measure_interleaved(&targets, rate, plan).await;
    drop(slow_proc);
    let [(_, direct), (_, normal), (_, gateway)] = runs[..] else {
        bail!("slow database: expected three measurements");
    };
    eprintln!(
        "slow database ({} ms per write) {rate} req/s: direct p99 {} ms, gateway p99 {} ms ({} errors); normal database p99 {} ms",
        plan.slow_db_delay_ms,
        report::ms(direct.latency.p99_us),
        report::ms(gateway.latency.p99_us),
        gateway.latency.errors,
        report::ms(normal.latency.p99_us),
    );
    results.slow_db = Some(report::SlowDb {
        delay_ms: plan.slow_db_delay_ms,
        rate,
        direct,
        normal,
        gateway,
    });
    Ok(())
}
