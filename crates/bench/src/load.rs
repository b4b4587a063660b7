//! The load generator: an open model at a fixed rate (coordinated omission corrected), a closed
//! loop for maximum throughput, streaming timings (time to first token, gaps between chunks),
//! and long-lived open streams for the memory figures.
//!
//! Open model: request `i` is scheduled at `t0 + i/rate` by a dedicated OS thread that sleeps to
//! each deadline (so schedules are accurate to tens of microseconds, not to tokio's 1-ms timer)
//! and never waits on responses; the runtime sends each request as its tick arrives, with as many
//! in flight as the target lets pile up. Latency is measured from the scheduled time, so a
//! stalled target is charged for every request it delayed, not only for the one it stalled.
//! Requests go over HTTP/1.1 keep-alive connections from hyper-util's pooled client, or, for
//! the memory figure when file descriptors are short, multiplexed over a few HTTP/2 (h2c)
//! connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::stats::Summary;

/// Longest a non-streaming request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a whole paced stream may take before it counts as an error.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams per HTTP/2 connection (the gateway's server allows 200).
pub const H2_STREAMS_PER_CONNECTION: usize = 100;

/// One endpoint under load: direct to the simulator, through nginx, or through the gateway.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub uri: Uri,
    pub auth: HeaderValue,
    /// The `model` field this target expects.
    pub model: &'static str,
}

impl Target {
    pub fn new(
        name: &'static str,
        url: &str,
        key: &str,
        model: &'static str,
    ) -> anyhow::Result<Target> {
        Ok(Target {
            name,
            uri: url.parse().with_context(|| format!("bad URL {url}"))?,
            auth: HeaderValue::from_str(&format!("Bearer {key}"))?,
            model,
        })
    }

    /// A chat request body for this target's model.
    pub fn body(&self, stream: bool, max_tokens: u32) -> Bytes {
        let body = serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
            "max_tokens": max_tokens,
            "stream": stream,
        });
        Bytes::from(body.to_string())
    }

    fn request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, self.auth.clone());
        request
    }
}

/// How requests reach a target.
#[derive(Clone)]
pub enum Sender {
    /// hyper-util's pooled HTTP/1.1 keep-alive client (one connection per in-flight request).
    Pool(Box<Client<HttpConnector, Full<Bytes>>>),
    /// A few HTTP/2 prior-knowledge connections, requests spread round-robin.
    H2 {
        connections: Arc<Vec<hyper::client::conn::http2::SendRequest<Full<Bytes>>>>,
        next: Arc<AtomicUsize>,
    },
}

impl Sender {
    /// A fresh HTTP/1.1 pool (no connection shared with an earlier measurement).
    pub fn pool() -> Sender {
        Sender::Pool(Box::new(http1_client()))
    }

    /// `count` HTTP/2 connections to `addr`.
    pub async fn h2(addr: SocketAddr, count: usize) -> anyhow::Result<Sender> {
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (send, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .context("HTTP/2 handshake")?;
            tokio::spawn(connection);
            connections.push(send);
        }
        Ok(Sender::H2 {
            connections: Arc::new(connections),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Response<Incoming>> {
        match self {
            Sender::Pool(client) => Ok(client.request(request).await?),
            Sender::H2 { connections, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % connections.len();
                let mut send = connections[i].clone();
                send.ready().await?;
                Ok(send.send_request(request).await?)
            }
        }
    }
}

/// hyper-util's pooled HTTP/1.1 client, with `TCP_NODELAY` and no limit on idle connections.
fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// POSTs `body` as JSON to `url` (the simulator's control API) and checks for a 2xx answer.
pub async fn post_json(url: &str, body: &serde_json::Value) -> anyhow::Result<()> {
    let client = http1_client();
    let mut request = Request::new(Full::new(Bytes::from(body.to_string())));
    *request.method_mut() = hyper::Method::POST;
    *request.uri_mut() = url.parse().with_context(|| format!("bad URL {url}"))?;
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = client.request(request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("POST {url}: {status}: {}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}

/// Sends `count` ticks, tick `i` at `t0 + i/rate`, from an OS thread that never waits on anything
/// but the clock; each tick carries its scheduled time.
fn ticker(rate: f64, count: usize) -> mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t0 = Instant::now() + Duration::from_millis(2);
    std::thread::spawn(move || {
        for i in 0..count {
            let at = t0 + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send(at).is_err() {
                return;
            }
        }
    });
    rx
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Sends one request and reads the whole answer; an error unless the status is 200.
async fn exchange(sender: &Sender, request: Request<Full<Bytes>>) -> anyhow::Result<()> {
    let response = sender.send(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// The result of an open-model run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OpenRun {
    pub target_rps: f64,
    /// Completed requests over the time from the first scheduled send to the last answer.
    pub achieved_rps: f64,
    #[serde(flatten)]
    pub latency: Summary,
    /// The load generator's own delay: from each scheduled time to the moment its request task
    /// started (charged to every target alike, so it cancels out of "added").
    pub loader_lateness: Summary,
    /// Percent of core 0's and core 1's time the hypervisor stole during the measurement: above
    /// a few percent, the tail figures say more about the host than about the target.
    pub steal_percent: [f64; 2],
}

/// The raw samples of one or more open-model runs of one target.
#[derive(Debug, Default)]
pub struct OpenRaw {
    pub rate: f64,
    pub samples: Vec<u32>,
    pub lateness: Vec<u32>,
    pub errors: usize,
    /// Time from each run's first scheduled send to its last answer, summed.
    pub elapsed: Duration,
    /// Hypervisor steal per core during the runs, in clock ticks, and the seconds they took.
    pub steal_ticks: [u64; 2],
    pub steal_seconds: f64,
}

impl OpenRaw {
    /// Adds another run's samples (interleaved rounds of the same target).
    pub fn merge(&mut self, other: OpenRaw) {
        self.rate = other.rate;
        self.samples.extend(other.samples);
        self.lateness.extend(other.lateness);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.steal_ticks[0] += other.steal_ticks[0];
        self.steal_ticks[1] += other.steal_ticks[1];
        self.steal_seconds += other.steal_seconds;
    }

    pub fn summary(mut self) -> OpenRun {
        let latency = Summary::of(&mut self.samples, self.errors);
        OpenRun {
            target_rps: self.rate,
            achieved_rps: latency.count as f64 / self.elapsed.as_secs_f64().max(1e-9),
            latency,
            loader_lateness: Summary::of(&mut self.lateness, 0),
            steal_percent: steal_percent(self.steal_ticks, self.steal_seconds),
        }
    }
}

/// Non-streaming requests at `rate` per second for `duration`, latency from each scheduled time.
pub async fn open_loop(
    sender: &Sender,
    target: &Target,
    body: &Bytes,
    rate: f64,
    duration: Duration,
) -> OpenRaw {
    let count = ((rate * duration.as_secs_f64()).round() as usize).max(1);
    let steal = crate::procs::StealWatch::start();
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let lateness = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut ticks = ticker(rate, count);
    let mut tasks = JoinSet::new();
    let mut start = None;
    while let Some(at) = ticks.recv().await {
        start.get_or_insert(at);
        let request = target.request(body);
        let sender = sender.clone();
        let (samples, errors, first_error) = (samples.clone(), errors.clone(), first_error.clone());
        let lateness = lateness.clone();
        tasks.spawn(async move {
            lock(&lateness).push(micros(at.elapsed()));
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange(&sender, request)).await {
                Ok(Ok(())) => lock(&samples).push(micros(at.elapsed())),
                outcome => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let message = match outcome {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => "timed out".to_owned(),
                    };
                    lock(&first_error).get_or_insert(message);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.map_or(duration, |s| s.elapsed());
    report_first_error(target, &first_error);
    let samples = std::mem::take(&mut *lock(&samples));
    let lateness = std::mem::take(&mut *lock(&lateness));
    let (steal_ticks, steal_seconds) = steal.finish();
    OpenRaw {
        rate,
        samples,
        lateness,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        steal_ticks,
        steal_seconds,
    }
}

/// The result of a closed-loop run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClosedRun {
    pub connections: usize,
    pub seconds: f64,
    pub requests: usize,
    pub rps: f64,
    #[serde(flatten)]
    pub latency: Summary,
}

/// `connections` workers, each sending its next request as soon as its last one is answered, for
/// `duration`: the most the target can serve.
pub async fn closed_loop(
    sender: &Sender,
    target: &Target,
    body: &Bytes,
    connections: usize,
    duration: Duration,
) -> ClosedRun {
    let start = Instant::now();
    let end = start + duration;
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (sender, target, body) = (sender.clone(), target.clone(), body.clone());
        let first_error = first_error.clone();
        workers.spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0;
            while Instant::now() < end {
                let sent = Instant::now();
                let request = target.request(&body);
                match tokio::time::timeout(REQUEST_TIMEOUT, exchange(&sender, request)).await {
                    Ok(Ok(())) => samples.push(micros(sent.elapsed())),
                    outcome => {
                        errors += 1;
                        if let Ok(Err(e)) = outcome {
                            lock(&first_error).get_or_insert(format!("{e:#}"));
                        }
                    }
                }
            }
            (samples, errors)
        });
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    while let Some(joined) = workers.join_next().await {
        if let Ok((s, e)) = joined {
            samples.extend(s);
            errors += e;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    report_first_error(target, &first_error);
    let latency = Summary::of(&mut samples, errors);
    ClosedRun {
        connections,
        seconds,
        requests: latency.count,
        rps: latency.count as f64 / seconds,
        latency,
    }
}

/// Timings of streamed answers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamRun {
    pub target_rps: f64,
    pub streams: usize,
    /// Mean content chunks per stream (the simulator's answer length).
    pub chunks_per_stream: f64,
    /// From the scheduled send to the first chunk carrying content.
    pub ttft: Summary,
    /// Between consecutive content chunks.
    pub gap: Summary,
    /// Percent of each core's time stolen by the hypervisor during the measurement.
    pub steal_percent: [f64; 2],
}

/// What one stream's reader saw.
#[derive(Default)]
struct StreamSeen {
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: Vec<u32>,
    chunks: usize,
    done: bool,
}

/// Splits server-sent events out of `buf` and notes the content chunks among them, all as arrived
/// at `now`.
fn take_events(buf: &mut BytesMut, now: Instant, seen: &mut StreamSeen) {
    while let Some(end) = find(buf, b"\n\n") {
        let event = buf.split_to(end + 2);
        for line in event[..].split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                seen.done = true;
                continue;
            }
            if has_content(data) {
                if let Some(last) = seen.last {
                    seen.gaps.push(micros(now - last));
                }
                seen.first.get_or_insert(now);
                seen.last = Some(now);
                seen.chunks += 1;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether a chunk's JSON carries generated text (`choices[0].delta.content` non-empty).
fn has_content(data: &[u8]) -> bool {
    let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    chunk["choices"][0]["delta"]["content"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
}

/// Reads a streamed answer to its end.
async fn read_stream(sender: &Sender, request: Request<Full<Bytes>>) -> anyhow::Result<StreamSeen> {
    let response = sender.send(request).await?;
    let status = response.status();
    let mut body = response.into_body();
    if status != hyper::StatusCode::OK {
        let body = body.collect().await?.to_bytes();
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    let mut buf = BytesMut::new();
    let mut seen = StreamSeen::default();
    while let Some(frame) = body.frame().await {
        let now = Instant::now();
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            take_events(&mut buf, now, &mut seen);
        }
    }
    if seen.chunks == 0 || !seen.done {
        bail!(
            "stream ended after {} content chunks, without [DONE]",
            seen.chunks
        );
    }
    Ok(seen)
}

/// The raw timings of one or more streaming runs of one target.
#[derive(Debug, Default)]
pub struct StreamRaw {
    pub rate: f64,
    pub ttfts: Vec<u32>,
    pub gaps: Vec<u32>,
    pub chunks: usize,
    pub errors: usize,
    pub steal_ticks: [u64; 2],
    pub steal_seconds: f64,
}

impl StreamRaw {
    /// Adds another run's timings (interleaved rounds of the same target).
    pub fn merge(&mut self, other: StreamRaw) {
        self.rate = other.rate;
        self.ttfts.extend(other.ttfts);
        self.gaps.extend(other.gaps);
        self.chunks += other.chunks;
        self.errors += other.errors;
        self.steal_ticks[0] += other.steal_ticks[0];
        self.steal_ticks[1] += other.steal_ticks[1];
        self.steal_seconds += other.steal_seconds;
    }

    pub fn summary(mut self) -> StreamRun {
        let ttft = Summary::of(&mut self.ttfts, self.errors);
        let gap = Summary::of(&mut self.gaps, self.errors);
        StreamRun {
            target_rps: self.rate,
            streams: ttft.count,
            chunks_per_stream: self.chunks as f64 / ttft.count.max(1) as f64,
            ttft,
            gap,
            steal_percent: steal_percent(self.steal_ticks, self.steal_seconds),
        }
    }
}

/// Stolen ticks over a span as a percentage of each core's time.
fn steal_percent(ticks: [u64; 2], seconds: f64) -> [f64; 2] {
    let per_core = seconds.max(1e-9) * crate::procs::clock_ticks_per_s() as f64 / 100.0;
    [ticks[0] as f64 / per_core, ticks[1] as f64 / per_core]
}

/// Streamed requests at `rate` per second for `duration`: time to first token (from the scheduled
/// send) and the gaps between content chunks.
pub async fn open_loop_streams(
    sender: &Sender,
    target: &Target,
    body: &Bytes,
    rate: f64,
    duration: Duration,
) -> StreamRaw {
    let steal = crate::procs::StealWatch::start();
    let count = ((rate * duration.as_secs_f64()).round() as usize).max(1);
    let ttfts = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let gaps = Arc::new(Mutex::new(Vec::new()));
    let chunks = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut ticks = ticker(rate, count);
    let mut tasks = JoinSet::new();
    while let Some(at) = ticks.recv().await {
        let request = target.request(body);
        let sender = sender.clone();
        let (ttfts, gaps, chunks, errors, first_error) = (
            ttfts.clone(),
            gaps.clone(),
            chunks.clone(),
            errors.clone(),
            first_error.clone(),
        );
        tasks.spawn(async move {
            match tokio::time::timeout(STREAM_TIMEOUT, read_stream(&sender, request)).await {
                Ok(Ok(seen)) => {
                    if let Some(first) = seen.first {
                        lock(&ttfts).push(micros(first - at));
                    }
                    lock(&gaps).extend_from_slice(&seen.gaps);
                    chunks.fetch_add(seen.chunks, Ordering::Relaxed);
                }
                outcome => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let message = match outcome {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => "timed out".to_owned(),
                    };
                    lock(&first_error).get_or_insert(message);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    report_first_error(target, &first_error);
    let ttfts = std::mem::take(&mut *lock(&ttfts));
    let gaps = std::mem::take(&mut *lock(&gaps));
    let (steal_ticks, steal_seconds) = steal.finish();
    StreamRaw {
        rate,
        ttfts,
        gaps,
        chunks: chunks.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        steal_ticks,
        steal_seconds,
    }
}

/// Streams held open (for the memory figure) until dropped.
pub struct HeldStreams {
    tasks: JoinSet<()>,
    /// Streams that have received their first content chunk and are still open.
    pub open: Arc<AtomicUsize>,
    /// Streams that failed or ended early.
    pub failed: Arc<AtomicUsize>,
    pub first_error: Arc<Mutex<Option<String>>>,
}

impl HeldStreams {
    /// Streams open now, and streams that failed.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.open.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Cancels every stream (their connections close or their HTTP/2 streams are reset).
    pub async fn close(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Opens `count` streams at `rate` per second; each counts as open from its first content chunk
/// and is then read (slowly, as the simulator paces it) until [`HeldStreams::close`].
pub fn open_streams(
    sender: &Sender,
    target: &Target,
    body: &Bytes,
    count: usize,
    rate: f64,
) -> HeldStreams {
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut tasks = JoinSet::new();
    let mut ticks = ticker(rate, count);
    let (sender, target, body) = (sender.clone(), target.clone(), body.clone());
    let (open2, failed2, first_error2) = (open.clone(), failed.clone(), first_error.clone());
    tasks.spawn(async move {
        let mut streams = JoinSet::new();
        while ticks.recv().await.is_some() {
            let request = target.request(&body);
            let sender = sender.clone();
            let (open, failed, first_error) =
                (open2.clone(), failed2.clone(), first_error2.clone());
            streams.spawn(async move {
                let outcome = hold_stream(&sender, request, &open).await;
                failed.fetch_add(1, Ordering::Relaxed);
                lock(&first_error).get_or_insert(match outcome {
                    Ok(()) => "stream ended while held open".to_owned(),
                    Err(e) => format!("{e:#}"),
                });
            });
        }
        // Keep the streams alive until this task is aborted.
        while streams.join_next().await.is_some() {}
    });
    HeldStreams {
        tasks,
        open,
        failed,
        first_error,
    }
}

/// Reads a stream, counting it in `open` from its first content chunk until it ends.
async fn hold_stream(
    sender: &Sender,
    request: Request<Full<Bytes>>,
    open: &AtomicUsize,
) -> anyhow::Result<()> {
    let response = sender.send(request).await?;
    let status = response.status();
    let mut body = response.into_body();
    if status != hyper::StatusCode::OK {
        let body = body.collect().await?.to_bytes();
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    let mut buf = BytesMut::new();
    let mut seen = StreamSeen::default();
    let mut counted = false;
    let result = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
                take_events(&mut buf, Instant::now(), &mut seen);
                if seen.chunks > 0 && !counted {
                    counted = true;
                    open.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    if counted {
        open.fetch_sub(1, Ordering::Relaxed);
    }
    result
}

fn report_first_error(target: &Target, first_error: &Mutex<Option<String>>) {
    if let Some(e) = lock(first_error).take() {
        eprintln!("  {}: first error: {e}", target.name);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_are_counted_once_with_gaps() {
        let t0 = Instant::now();
        let mut seen = StreamSeen::default();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b": OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"del");
        take_events(&mut buf, t0, &mut seen);
        assert_eq!((seen.chunks, seen.first), (0, None));
        buf.extend_from_slice(b"ta\":{\"content\":\"Hi\"}}]}\n\n");
        take_events(&mut buf, t0, &mut seen);
        assert_eq!(seen.chunks, 1);
        buf.extend_from_slice(
            b"data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\ndata: [DONE]\n\n",
        );
        take_events(&mut buf, t0 + Duration::from_millis(20), &mut seen);
        assert_eq!(seen.chunks, 2);
        assert_eq!(seen.gaps, vec![20_000]);
        assert!(seen.done && buf.is_empty());
    }
}
