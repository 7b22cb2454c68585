//! `callcast run job.json`: one broadcast in the foreground, for containers and job schedulers. The job file is
//! the body of `POST /v1/broadcasts` (JSON, or the same in TOML). Progress goes to stdout (a status line on a
//! terminal, JSON lines otherwise), a report file is written at the end, SIGTERM finalises the outputs.

use crate::broadcast::request::BroadcastRequest;
use crate::broadcast::spec::BroadcastSpec;
use crate::broadcast::status::BroadcastStatus;
use crate::server::{self, ServeArgs};
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Exit codes a scheduler can branch on (0: the broadcast ended).
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_JOB: i32 = 2;
pub const EXIT_SOURCE_UNREACHABLE: i32 = 3;
pub const EXIT_EVERY_OUTPUT_FAILED: i32 = 4;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The broadcast to run: the JSON body of `POST /v1/broadcasts`, or the same as TOML (`.toml`).
    pub job: PathBuf,
    /// Stop (cleanly) after this many seconds.
    #[arg(long)]
    pub duration: Option<u64>,
    /// End when nobody has been in the call this many seconds (overrides the job's `idle_timeout_s`).
    #[arg(long)]
    pub until_idle: Option<u32>,
    /// Write a JSON report here at the end: duration, bytes and reconnects per output, frames.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also serve the HTTP API (status, WHIP for a built-in room) while the job runs.
    #[arg(long)]
    pub http: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// A job file as a request; errors name the field (JSON) or the line (TOML).
pub fn read_job(path: &Path) -> Result<BroadcastRequest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        return toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()));
    }
    crate::api::json_body::parse(text.as_bytes()).map_err(|e| {
        let field = e.field.unwrap_or_else(|| "body".into());
        format!("{}: {field}: {}", path.display(), e.message)
    })
}

/// What the job did, for `--report` and the last progress line.
fn report(status: &BroadcastStatus, elapsed: Duration) -> serde_json::Value {
    serde_json::json!({
        "id": status.id,
        "state": status.state,
        "reason": status.reason,
        "failure": status.failure,
        "duration_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "frames_out": status.frames_out,
        "frames_dropped": status.frames_dropped,
        "participants": status.participants.len(),
        "outputs": status.outputs.iter().map(|o| serde_json::json!({
            "id": o.id, "kind": o.kind, "url": o.url, "state": o.state,
            "bytes": o.bytes, "reconnects": o.reconnects, "error": o.error,
        })).collect::<Vec<_>>(),
    })
}

/// Prints one progress update: a rewritten line on a terminal, a JSON line otherwise.
fn progress(status: &BroadcastStatus, elapsed: Duration, last: &mut (u64, u64, Instant)) {
    let bytes: u64 = status.outputs.iter().map(|o| o.bytes).sum();
    let secs = last.2.elapsed().as_secs_f64().max(0.001);
    let frames_out = status.frames_out.unwrap_or(0);
    let fps = (frames_out.saturating_sub(last.0)) as f64 / secs;
    let kbps = (bytes.saturating_sub(last.1)) as f64 * 8.0 / 1000.0 / secs;
    *last = (frames_out, bytes, Instant::now());
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let outputs: Vec<String> = status
            .outputs
            .iter()
            .map(|o| format!("{} {} {:?}", o.id, o.kind, o.state).to_lowercase())
            .collect();
        let t = elapsed.as_secs();
        let _ = write!(
            out,
            "\r\x1b[2K{:02}:{:02}:{:02} {:?} {fps:.1} fps ({} dropped) {kbps:.0} kb/s {} participants | {}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            status.state,
            status.frames_dropped.unwrap_or(0),
            status.participants.len(),
            outputs.join(", ")
        );
    } else {
        let mut line = report(status, elapsed);
        line["fps"] = serde_json::json!((fps * 10.0).round() / 10.0);
        line["kbps"] = serde_json::json!(kbps.round());
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

pub async fn run(args: RunArgs) -> Result<i32> {
    let mut request = match read_job(&args.job) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("bad job file: {message}");
            return Ok(EXIT_BAD_JOB);
        }
    };
    if let Some(idle) = args.until_idle {
        request.idle_timeout_s = Some(idle);
    }
    let settings = args.serve.settings()?;
    server::prepare(&settings)?;
    let state = server::build_state(&settings);
    let spec = BroadcastSpec::from_request(request, state.broadcasts.templates())
        .and_then(|spec| state.broadcasts.check(&spec).map(|()| spec));
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("bad job file: {}: {}: {}", args.job.display(), e.field, e.message);
            return Ok(EXIT_BAD_JOB);
        }
    };
    let broadcasts = state.broadcasts.clone();
    if args.http {
        server::check_exposure(settings.listen, &settings.tokens())?;
        let listener = server::bind(&settings).await?;
        tokio::spawn(server::serve(listener, state, std::future::pending()));
    }
    let started = Instant::now();
    let id = broadcasts.start(spec)?.id;
    let deadline = args
        .duration
        .map(|d| tokio::time::Instant::now() + Duration::from_secs(d));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let shutdown = server::shutdown_signal();
    tokio::pin!(shutdown);
    let mut last = (0, 0, Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let status = broadcasts.get(&id).context("the broadcast vanished")?;
                progress(&status, started.elapsed(), &mut last);
                if status.state.is_final() {
                    break;
                }
            }
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => break,
            _ = &mut shutdown => break,
        }
    }
    let status = broadcasts.stop(&id).await.context("the broadcast vanished")?;
    if std::io::stdout().is_terminal() {
        println!();
    }
    let summary = report(&status, started.elapsed());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    eprintln!("broadcast {id} {}", summary["state"].as_str().unwrap_or("?"));
    use crate::broadcast::status::{BroadcastState, Failure};
    Ok(match (status.state, status.failure) {
        (BroadcastState::Failed, Some(Failure::Source)) => EXIT_SOURCE_UNREACHABLE,
        (BroadcastState::Failed, Some(Failure::Outputs)) => EXIT_EVERY_OUTPUT_FAILED,
        (BroadcastState::Failed, _) => EXIT_FAILED,
        _ => 0,
    })
}
