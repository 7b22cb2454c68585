//! `callcast demo` on a non-loopback address makes a control token and writes it to `DATA_DIR/api-token`, mode
//! 600, rather than printing it; the API then takes that token and refuses callers without it. Run in a network
//! namespace that has only loopback, so listening on 0.0.0.0 reaches nothing beyond this machine.

use crate::support::{assert_no_glib_warnings, http, KillOnDrop, CALLCAST};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Reads the demo's stdout (every line, kept) until `pick` returns Some or 20 s pass.
fn read_until<T>(
    lines: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the demo did not print what was expected in 20 s; it printed {seen:?}"));
        seen.push(line.clone());
        if let Some(found) = pick(&line) {
            return found;
        }
    }
}

#[test]
fn an_exposed_demo_writes_its_token_to_a_file_only_its_user_can_read() {
    if crate::support::rerun_in_loopback_namespace(
        module_path!(),
        "an_exposed_demo_writes_its_token_to_a_file_only_its_user_can_read",
    ) {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    // A token file left by an earlier run, readable by everyone: the demo's new token must not stay readable.
    let token_file = data.path().join("api-token");
    std::fs::write(&token_file, "old-token").expect("write");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let stderr = data.path().join("demo-stderr.log");
    let mut child = Command::new(CALLCAST)
        .args(["demo", "--participants", "0", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("CALLCAST_API_TOKEN")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("callcast demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut demo = KillOnDrop(child);
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let named = read_until(&lines, &mut seen, |line| {
        line.starts_with("the API needs a bearer token")
            .then(|| line.rsplit(' ').next().map(str::to_string))
            .flatten()
    });
    assert_eq!(std::path::Path::new(&named), token_file, "{seen:?}");
    let port: u16 = read_until(&lines, &mut seen, |line| {
        let rest = line.strip_prefix("watch it at http://0.0.0.0:")?;
        rest.split('/').next()?.parse().ok()
    });

    let mode = std::fs::metadata(&token_file).expect("api-token").permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "mode of {}: {:o}",
        token_file.display(),
        mode & 0o777
    );
    let token = std::fs::read_to_string(&token_file).expect("read api-token");
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "a fresh random token, not {token:?}"
    );
    let list = format!("http://127.0.0.1:{port}/v1/broadcasts");
    assert_eq!(http().get(&list).send().expect("GET").status().as_u16(), 401);
    assert_eq!(
        http()
            .get(&list)
            .bearer_auth("old-token")
            .send()
            .expect("GET")
            .status()
            .as_u16(),
        401
    );
    let with_token = http().get(&list).bearer_auth(&token).send().expect("GET");
    assert_eq!(with_token.status().as_u16(), 200);

    let exit = demo
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("demo exits on SIGTERM");
    assert!(exit.success(), "demo exit status {exit}");
    seen.extend(lines.try_iter());
    let stderr = std::fs::read_to_string(stderr).unwrap_or_default();
    assert!(
        !seen.iter().any(|l| l.contains(&token)) && !stderr.contains(&token),
        "the token was printed"
    );
    assert_no_glib_warnings("callcast demo", &stderr);
}
