//! Load generator and baseline server for the webhook (see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release --example loadgen -- run --url https://127.0.0.1:8443/mutate --ca ca.pem \
//!     [--http 1|2] [--concurrency 32] [--connections N] [--rate R] [--duration 10] [--pod typical]
//! cargo run --release --example loadgen -- baseline --listen 127.0.0.1:8444 --cert tls.crt --key tls.key
//! cargo run --release --example loadgen -- startup --url https://127.0.0.1:8443/health/ready \
//!     --ca ca.pem -- target/release/vault-injector serve ...
//! ```
//!
//! `run` posts AdmissionReviews of a fixture pod (`tests/support/workloads.rs`), each with its
//! own uid, over TLS with keep-alive, and checks every reply: HTTP 200, `allowed: true`, a non-empty
//! `patch`, and the request's uid echoed. Without `--rate` it is closed-loop (`--concurrency`
//! requests always in flight); with `--rate` it is open-loop: request `i` is due at
//! `start + i / rate` and its latency is measured from that due time, so a server that falls
//! behind shows its queueing in the percentiles instead of slowing the generator down.
//!
//! `baseline` is the limit: the same rustls configuration (`vault_injector::tls`), the same
//! hyper connection settings as the injector, answering every review with the injector's own
//! reply for the fixture pod (precomputed, same size), only the uid copied in.
//!
//! `startup` runs a command, polls the readiness URL every millisecond, prints the time from
//! spawning to the first 204 and the process's resident memory at that moment, then kills it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The injector binary's allocator (src/main.rs), so both servers of a run and the profiles
// allocate the same way.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::workloads;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vault_injector::admission;
use vault_injector::settings::Settings;
use vault_injector::tls::{self, CertFiles, CertStore};

/// A uid of the same length as a real one, replaced in every request (and reply).
const UID_PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Parser)]
#[command(about = "Load generator and baseline server for the vault-injector webhook")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post AdmissionReviews and report throughput and latency.
    Run(RunArgs),
    /// Serve precomputed replies on the injector's TLS stack.
    Baseline(BaselineArgs),
    /// Time a command from spawn to its first 204 on the readiness URL.
    Startup(StartupArgs),
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// The webhook URL, e.g. https://127.0.0.1:8443/mutate.
    #[arg(long)]
    url: Uri,
    /// PEM file with the CA that signed the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// TLS server name to verify (default: the URL's host).
    #[arg(long)]
    server_name: Option<String>,
    /// HTTP version: 1 (HTTP/1.1, one request in flight per connection) or 2.
    #[arg(long, default_value_t = 1)]
    http: u8,
    /// Requests in flight (closed loop), or the most in flight (open loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the requests are spread over (HTTP/1.1 uses one per request in flight).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests per second (open loop); closed loop without it.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured, after the warm-up (at most 600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The fixture pod: small, typical or large.
    #[arg(long, default_value = "typical")]
    pod: String,
    /// Tokio worker threads of the generator (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Label printed with the result line.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(clap::Args)]
struct BaselineArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// The fixture pod whose injector reply is served.
    #[arg(long, default_value = "typical")]
    pod: String,
    /// Instead of a fixture's reply, serve the injector's reply to the first review received
    /// (computed once by `admission::review`, then only the uid copied in); requests without a
    /// body get 204. For pointing a real API server at the baseline when all its pods are
    /// alike (benches/apiserver.sh `WEBHOOK=baseline`).
    #[arg(long)]
    learn: bool,
    /// Before answering, parse each request body as the least any webhook must do to read
    /// the pod it patches: `json` only parses the whole body (sonic-rs, skipping values),
    /// `pod` decodes it as the injector does (the typed Pod). The throughput floor of a real
    /// injector on this stack (BENCHMARKS.md).
    #[arg(long, value_enum)]
    decode: Option<Decode>,
    /// Tokio worker threads (default: one per CPU, as the injector's runtime).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Decode {
    Json,
    Pod,
}

#[derive(clap::Args)]
struct StartupArgs {
    /// The readiness URL, e.g. https://127.0.0.1:8443/health/ready.
    #[arg(long)]
    url: Uri,
    #[arg(long)]
    ca: PathBuf,
    #[arg(long)]
    server_name: Option<String>,
    /// How many times to start the command.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let rt = runtime(Some(args.threads));
            rt.block_on(run(args));
        }
        Command::Baseline(args) => {
            let rt = runtime(args.threads);
            rt.block_on(baseline(args));
        }
        Command::Startup(args) => {
            let rt = runtime(Some(1));
            rt.block_on(startup(args));
        }
    }
}

fn runtime(threads: Option<usize>) -> tokio::runtime::Runtime {
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .expect("runtime"),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Where to connect and how to verify the server.
struct Target {
    addr: String,
    authority: String,
    path: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl Target {
    fn new(url: &Uri, ca: &PathBuf, server_name: Option<&str>, alpn: &[u8]) -> Self {
        let host = url.host().expect("the URL has a host").to_owned();
        let port = url.port_u16().unwrap_or(443);
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("readable CA file") {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a usable CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = server_name.map(str::to_owned).unwrap_or_else(|| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        });
        Self {
            addr: format!("{host}:{port}"),
            authority: url
                .authority()
                .map_or_else(|| host.clone(), |a| a.to_string()),
            path: url
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.to_string()),
            server_name: ServerName::try_from(name).expect("a valid server name"),
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    async fn tls(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        self.connector.connect(self.server_name.clone(), tcp).await
    }
}

/// One HTTP connection, HTTP/1.1 or HTTP/2.
#[derive(Clone)]
enum Conn {
    H1(Arc<Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    async fn open(target: &Target, http: u8) -> Result<Self, String> {
        let io = TokioIo::new(target.tls().await.map_err(|e| format!("connect: {e}"))?);
        if http == 2 {
            let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            Ok(Self::H2(send))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("h1 handshake: {e}"))?;
            tokio::spawn(conn);
            Ok(Self::H1(Arc::new(Mutex::new(send))))
        }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, String> {
        match self {
            Self::H1(send) => {
                let mut send = send.lock().await;
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(req).await.map_err(|e| e.to_string())
            }
            Self::H2(send) => {
                let mut send = send.clone();
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(req).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// The request body with a uid slot to overwrite.
struct BodyTemplate {
    bytes: Vec<u8>,
    uid_at: usize,
}

impl BodyTemplate {
    fn new(pod: &str) -> Self {
        let pod = workloads::pod(pod).expect("--pod is small, typical or large");
        let bytes = workloads::review_body(&pod, UID_PLACEHOLDER);
        let uid_at = find(&bytes, UID_PLACEHOLDER.as_bytes()).expect("uid in the body");
        Self { bytes, uid_at }
    }

    fn with_uid(&self, uid: &str) -> Bytes {
        let mut body = self.bytes.clone();
        body[self.uid_at..self.uid_at + uid.len()].copy_from_slice(uid.as_bytes());
        Bytes::from(body)
    }
}

fn uid(worker: usize, seq: u64) -> String {
    format!("{worker:08x}-0000-4000-8000-{seq:012x}")
}

/// What one request came to.
enum Outcome {
    Ok,
    Failed(String),
}

async fn post(target: &Target, conn: &Conn, template: &BodyTemplate, uid: &str) -> Outcome {
    let req = Request::post(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(template.with_uid(uid)))
        .expect("a valid request");
    let resp = match conn.send(req).await {
        Ok(resp) => resp,
        Err(e) => return Outcome::Failed(format!("send: {e}")),
    };
    let status = resp.status();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Outcome::Failed(format!("body: {e}")),
    };
    if status != StatusCode::OK {
        return Outcome::Failed(format!("HTTP {status}"));
    }
    verify(&body, uid)
}

#[derive(serde::Deserialize)]
struct ReplyReview<'a> {
    #[serde(borrow)]
    response: Option<Reply<'a>>,
}

#[derive(serde::Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    uid: &'a str,
    allowed: bool,
    #[serde(borrow)]
    patch: Option<&'a str>,
}

fn verify(body: &[u8], uid: &str) -> Outcome {
    let review: ReplyReview = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("reply is not an AdmissionReview: {e}")),
    };
    let Some(reply) = review.response else {
        return Outcome::Failed("reply without response".into());
    };
    if reply.uid != uid {
        Outcome::Failed("uid not echoed".into())
    } else if !reply.allowed {
        Outcome::Failed("not allowed".into())
    } else if reply.patch.is_none_or(str::is_empty) {
        Outcome::Failed("no patch".into())
    } else {
        Outcome::Ok
    }
}

/// Shared state of one `run`.
struct Shared {
    target: Target,
    template: BodyTemplate,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Open loop: the next request's index; closed loop: unused.
    next: AtomicU64,
    interval: Option<Duration>,
}

#[derive(Default)]
struct Tally {
    hist: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            hist: Some(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram")),
            ..Self::default()
        }
    }

    fn merge(&mut self, other: Self) {
        if let (Some(h), Some(o)) = (self.hist.as_mut(), other.hist.as_ref()) {
            h.add(o).expect("same bounds");
        }
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                if let Some(h) = self.hist.as_mut() {
                    h.saturating_record(latency.as_nanos() as u64);
                }
            }
            Outcome::Failed(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e);
                }
            }
        }
    }
}

async fn run(args: RunArgs) {
    assert!(args.http == 1 || args.http == 2, "--http is 1 or 2");
    assert!(
        args.duration > 0.0 && args.duration <= 600.0,
        "--duration is in (0, 600]"
    );
    let alpn: &[u8] = if args.http == 2 { b"h2" } else { b"http/1.1" };
    let target = Target::new(&args.url, &args.ca, args.server_name.as_deref(), alpn);
    let concurrency = args.concurrency.max(1);
    let n_conns = if args.http == 1 {
        concurrency
    } else {
        args.connections.clamp(1, concurrency)
    };
    let mut conns = Vec::with_capacity(n_conns);
    for _ in 0..n_conns {
        match Conn::open(&target, args.http).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.url);
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now() + Duration::from_millis(10);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let shared = Arc::new(Shared {
        template: BodyTemplate::new(&args.pod),
        target,
        start,
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
        next: AtomicU64::new(0),
        interval: args.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
    });
    let mut tasks = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let conn = conns[worker % n_conns].clone();
        tasks.push(tokio::spawn(worker_loop(Arc::clone(&shared), conn, worker)));
    }
    let mut tally = Tally::new();
    for t in tasks {
        tally.merge(t.await.expect("worker"));
    }
    report(&args, &tally, n_conns);
}

async fn worker_loop(shared: Arc<Shared>, conn: Conn, worker: usize) -> Tally {
    let mut tally = Tally::new();
    let mut seq = 0_u64;
    tokio::time::sleep_until(shared.start.into()).await;
    loop {
        // The time this request is due: now (closed loop) or its slot in the schedule.
        let due = match shared.interval {
            None => Instant::now(),
            Some(interval) => {
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                let due = shared.start + interval.mul_f64(i as f64);
                if due >= shared.end {
                    break;
                }
                pace_until(due).await;
                due
            }
        };
        if due >= shared.end {
            break;
        }
        seq += 1;
        let outcome = post(&shared.target, &conn, &shared.template, &uid(worker, seq)).await;
        if due >= shared.measure_from {
            tally.record(outcome, due.elapsed());
        }
    }
    tally
}

/// Waits until `due` to within microseconds. tokio's timer has a 1 ms resolution and rounds
/// up, so `sleep_until(due)` alone sends each request up to a millisecond late; as latency is
/// measured from `due`, that delay showed in every open-loop percentile, the baseline's too
/// (its p50 was 1.2 ms at 12% CPU). The timer covers all but the last 2 ms; the rest is spent
/// yielding, so other tasks' replies are still read meanwhile.
async fn pace_until(due: Instant) {
    const TIMER_SLACK: Duration = Duration::from_millis(2);
    if let Some(early) = due.checked_sub(TIMER_SLACK)
        && early > Instant::now()
    {
        tokio::time::sleep_until(early.into()).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

fn report(args: &RunArgs, tally: &Tally, conns: usize) {
    let hist = tally.hist.as_ref().expect("histogram");
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1e6;
    let rps = (tally.ok + tally.errors) as f64 / args.duration;
    let mode = match args.rate {
        Some(r) => format!("open-loop rate={r:.0}/s"),
        None => "closed-loop".to_owned(),
    };
    println!(
        "{label} http/{http} {mode} concurrency={c} connections={conns} pod={pod}: \
         rps={rps:.0} p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} p999_ms={p999:.3} \
         max_ms={max:.3} ok={ok} errors={errors}{first}",
        label = args.label,
        http = args.http,
        c = args.concurrency,
        pod = args.pod,
        p50 = ms(0.50),
        p90 = ms(0.90),
        p99 = ms(0.99),
        p999 = ms(0.999),
        max = hist.max() as f64 / 1e6,
        ok = tally.ok,
        errors = tally.errors,
        first = tally
            .first_error
            .as_ref()
            .map(|e| format!(" first_error={e:?}"))
            .unwrap_or_default(),
    );
}

// ---------------------------------------------------------------------------------------------
// Baseline server

struct Canned {
    reply: Vec<u8>,
    uid_at: usize,
    uid_len: usize,
}

async fn baseline(args: BaselineArgs) {
    let canned = Arc::new(std::sync::OnceLock::new());
    if !args.learn {
        // The injector's own reply for the fixture, with the placeholder uid.
        let pod = workloads::pod(&args.pod).expect("--pod is small, typical or large");
        let body = workloads::review_body(&pod, UID_PLACEHOLDER);
        let _ = canned.set(learn(&body).expect("the fixture reviews"));
    }

    // The injector's TLS configuration, from the same settings and certificate loader.
    let store = CertStore::new();
    store.set(
        CertFiles::new(&args.cert, &args.key)
            .load()
            .expect("certificate files"),
    );
    let settings = Settings::default();
    let config = tls::server_config(&settings.server, &store).expect("TLS config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    // The injector's HTTP settings (server.rs `Server::with_limits`).
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));

    let listener = TcpListener::bind(args.listen).await.expect("bind");
    println!(
        "baseline listening on {} ({})",
        listener.local_addr().expect("addr"),
        match canned.get() {
            Some(Canned { reply, .. }) => format!("{} byte replies", reply.len()),
            None => "replies learnt from the first review".to_owned(),
        }
    );
    match args.decode {
        Some(Decode::Json) => println!("each body parsed as JSON first"),
        Some(Decode::Pod) => println!("each body decoded as the injector decodes it first"),
        None => {}
    }
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let http = http.clone();
        let canned = Arc::clone(&canned);
        let decode = args.decode;
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let service = service_fn(move |req: Request<Incoming>| {
                let canned = Arc::clone(&canned);
                async move { Ok::<_, Infallible>(canned_reply(&canned, req, decode).await) }
            });
            let io = TokioIo::new(tls);
            let _ = if h2 {
                http.http2_only().serve_connection(io, service).await
            } else {
                http.http1_only().serve_connection(io, service).await
            };
        });
    }
}

/// The injector's reply to `body`, and where its uid sits in it.
fn learn(body: &[u8]) -> Option<Canned> {
    let reviewed = admission::review(body, &workloads::defaults()).ok()?;
    let uid = request_uid(body)?;
    let uid_at = find(&reviewed.body, format!("\"uid\":\"{uid}\"").as_bytes())? + 7;
    Some(Canned {
        reply: reviewed.body,
        uid_at,
        uid_len: uid.len(),
    })
}

/// The first `"uid":"..."` of a review body (the request's: it comes before the object).
fn request_uid(body: &[u8]) -> Option<&str> {
    let at = find(body, b"\"uid\":\"")? + 7;
    let len = body[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[at..at + len]).ok()
}

async fn canned_reply(
    canned: &std::sync::OnceLock<Canned>,
    req: Request<Incoming>,
    decode: Option<Decode>,
) -> Response<Full<Bytes>> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if body.is_empty() {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
        return resp;
    }
    let parsed = match decode {
        None => true,
        Some(Decode::Json) => {
            sonic_rs::from_slice::<serde::de::IgnoredAny>(std::hint::black_box(&body)).is_ok()
        }
        Some(Decode::Pod) => admission::takes_fast_path(std::hint::black_box(&body)),
    };
    if !parsed {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"not parsed")));
        *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return resp;
    }
    let Some(canned) = canned.get().or_else(|| {
        let learnt = learn(&body)?;
        Some(canned.get_or_init(|| learnt))
    }) else {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"not a review")));
        *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return resp;
    };
    let mut reply = canned.reply.clone();
    // Echo the request's uid when it has the learnt one's length (the generator's and the API
    // server's uids all do).
    if let Some(uid) = request_uid(&body)
        && uid.len() == canned.uid_len
    {
        reply[canned.uid_at..canned.uid_at + uid.len()].copy_from_slice(uid.as_bytes());
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Start-up

async fn startup(args: StartupArgs) {
    let target = Target::new(
        &args.url,
        &args.ca,
        args.server_name.as_deref(),
        b"http/1.1",
    );
    let mut times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let mut child = std::process::Command::new(&args.command[0])
            .args(&args.command[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the command starts");
        let ready = loop {
            if started.elapsed() > Duration::from_secs(10) {
                break None;
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("the command exited before it was ready: {status}");
                std::process::exit(1);
            }
            if probe(&target).await {
                break Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let rss = proc_status_kib(child.id(), "VmRSS:");
        let _ = child.kill();
        let _ = child.wait();
        match ready {
            Some(t) => {
                println!(
                    "ready_ms={:.1} rss_at_ready_kib={}",
                    t.as_secs_f64() * 1e3,
                    rss.unwrap_or(0)
                );
                times.push(t);
            }
            None => {
                eprintln!("not ready within 10 s");
                std::process::exit(1);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    times.sort();
    println!(
        "startup median_ready_ms={:.1}",
        times[times.len() / 2].as_secs_f64() * 1e3
    );
}

/// One GET of the readiness URL on a fresh connection: true on 204.
async fn probe(target: &Target) -> bool {
    let Ok(conn) = Conn::open(target, 1).await else {
        return false;
    };
    let req = Request::get(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    matches!(conn.send(req).await, Ok(r) if r.status() == StatusCode::NO_CONTENT)
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
