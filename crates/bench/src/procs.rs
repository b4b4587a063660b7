//! The processes under test: starting the simulator, the gateway and nginx (pinned to a core with
//! `taskset` when it is available), waiting until they listen, reading their memory, CPU time and
//! open file descriptors from `/proc`, and stopping them (by PID) when dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// CPU pinning: which core each role runs on, or none.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    /// `taskset` is installed and there are at least two cores.
    pub enabled: bool,
}

impl Pinning {
    /// A command that runs `program` on `core` (when pinning is on).
    pub fn command(&self, core: Option<usize>, program: &Path) -> Command {
        match core {
            Some(core) if self.enabled => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core.to_string()).arg(program);
                command
            }
            _ => Command::new(program),
        }
    }
}

/// A started process, stopped when dropped.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `command` with stderr to `log`; when `marker` is given, waits for the stdout line
    /// containing it and returns that line's last word (`... listening on http://ADDR`).
    pub fn start(
        name: &str,
        mut command: Command,
        log: &Path,
        marker: Option<&str>,
    ) -> anyhow::Result<(Proc, Option<String>)> {
        let stderr = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        let marker_owned = marker.map(str::to_owned);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && marker_owned.as_deref().is_some_and(|m| line.contains(m)) {
                    sent = true;
                    let _ = tx.send(line.trim().rsplit(' ').next().unwrap_or("").to_owned());
                }
            }
        });
        let mut proc = Proc {
            name: name.to_owned(),
            pid: child.id(),
            child,
            log: log.to_owned(),
        };
        let Some(_) = marker else {
            return Ok((proc, None));
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => Ok((proc, Some(url))),
            Err(_) => {
                proc.stop();
                bail!("{name} did not start:\n{}", proc.log_tail())
            }
        }
    }

    /// The last lines of the process's stderr log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[start..].to_owned()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// CPU time (user + system) in clock ticks, of this process and its children that are still
    /// running (nginx's worker).
    pub fn cpu_ticks(&self) -> u64 {
        let mut total = cpu_ticks(self.pid);
        for child in children(self.pid) {
            total += cpu_ticks(child);
        }
        total
    }

    /// Open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }

    /// SIGTERM, then SIGKILL after a grace period; children left behind (nginx's worker) are
    /// killed too.
    pub fn stop(&mut self) {
        if !self.running() {
            return;
        }
        let kids = children(self.pid);
        signal("TERM", self.pid);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && self.running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for kid in kids {
            if Path::new(&format!("/proc/{kid}")).exists() {
                signal("KILL", kid);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Time stolen from each CPU by the hypervisor so far (`steal` in `/proc/stat`), in clock ticks,
/// for cpu0 and cpu1.
pub fn steal_ticks() -> [u64; 2] {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut out = [0; 2];
    for (i, name) in ["cpu0 ", "cpu1 "].iter().enumerate() {
        if let Some(line) = stat.lines().find(|l| l.starts_with(name)) {
            out[i] = line
                .split_whitespace()
                .nth(8)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    out
}

/// Measures the hypervisor's steal over a span, as a percentage of each core's time.
pub struct StealWatch {
    start: Instant,
    ticks: [u64; 2],
}

impl StealWatch {
    pub fn start() -> StealWatch {
        StealWatch {
            start: Instant::now(),
            ticks: steal_ticks(),
        }
    }

    /// (stolen ticks per core, elapsed seconds) since the start.
    pub fn finish(&self) -> ([u64; 2], f64) {
        let now = steal_ticks();
        (
            [
                now[0].saturating_sub(self.ticks[0]),
                now[1].saturating_sub(self.ticks[1]),
            ],
            self.start.elapsed().as_secs_f64(),
        )
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks_per_s() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Whether `program --version`-like `args` run successfully.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// This process's open-files limit (soft, hard), from `/proc/self/limits`.
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let parse = |v: Option<&str>| match v {
        Some("unlimited") => u64::MAX,
        Some(v) => v.parse().unwrap_or(1024),
        None => 1024,
    };
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            let mut words = l["Max open files".len()..].split_whitespace();
            (parse(words.next()), parse(words.next()))
        })
        .unwrap_or((1024, 1024))
}

/// Raises this process's soft open-files limit to its hard limit (with `prlimit`, which this
/// process and every child it starts afterwards inherit); returns the limits in effect.
pub fn raise_nofile() -> (u64, u64) {
    let (soft, hard) = nofile_limits();
    if soft < hard && hard != u64::MAX {
        let _ = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={hard}:{hard}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    nofile_limits()
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: &str, proc: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if !proc.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "{} did not listen on {addr}:\n{}",
        proc.name,
        proc.log_tail()
    )
}
