//! Settings come from defaults < callcast.toml < CALLCAST_* < flags; `callcast config check` shows the result
//! with its sources and no secret; `serve` uses the file.

use crate::support::{http, Server};
use std::process::{Command, Output};

const FILE_TOKEN: &str = "file-token-3f9a";
const ENV_TOKEN: &str = "007";

fn config_check(dir: &std::path::Path, env: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callcast"));
    command.current_dir(dir).args(["config", "check"]).args(flags);
    for var in callcast::config::SECRET_ENV
        .iter()
        .chain(&callcast::config::AWS_ENV)
        .map(|(v, _)| v)
    {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).output().expect("run config check")
}

fn line_of<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
}

#[test]
fn each_layer_overrides_the_one_before_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("callcast.toml"),
        format!(
            "latency_ms = 90\nmedia_timeout_s = 9\nmax_broadcasts = 2\napi_tokens = [\"{FILE_TOKEN}\"]\n\
             [room_tokens]\nstage = \"room-secret-77\"\n"
        ),
    )
    .expect("write config");
    let out = config_check(
        dir.path(),
        &[
            ("CALLCAST_MEDIA_TIMEOUT_S", "12"),
            ("CALLCAST_MAX_BROADCASTS", "4"),
            ("CALLCAST_API_TOKEN", ENV_TOKEN),
        ],
        &["--max-broadcasts", "6"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(line_of(&stdout, "latency_ms"), "latency_ms = 90  # callcast.toml");
    assert_eq!(
        line_of(&stdout, "media_timeout_s"),
        "media_timeout_s = 12  # environment"
    );
    assert_eq!(line_of(&stdout, "max_broadcasts"), "max_broadcasts = 6  # flags");
    assert_eq!(line_of(&stdout, "listen"), "listen = \"127.0.0.1:8080\"  # default");
    // The token from the environment replaced the file's; none is printed.
    assert_eq!(line_of(&stdout, "api_tokens"), "api_tokens = [\"***\"]  # environment");
    for secret in [FILE_TOKEN, "room-secret-77"] {
        assert!(!stdout.contains(secret), "{stdout}");
    }
}

#[test]
fn a_bad_setting_is_named_with_where_it_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("callcast.toml"), "latncy_ms = 90\n").expect("write config");
    let out = config_check(dir.path(), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("latncy_ms") && stderr.contains("callcast.toml"),
        "{stderr}"
    );

    std::fs::remove_file(dir.path().join("callcast.toml")).expect("remove");
    let out = config_check(dir.path(), &[("CALLCAST_LATENCY_MS", "soon")], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("LATENCY_MS") && stderr.contains("environment"),
        "{stderr}"
    );

    let out = config_check(dir.path(), &[], &["--webhook-url", "http://127.0.0.1:9/hook"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("webhook_secret"), "{stderr}");

    let out = config_check(dir.path(), &[], &["--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn serve_takes_its_tokens_from_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("callcast.toml");
    std::fs::write(&file, format!("api_tokens = [\"{FILE_TOKEN}\"]\n")).expect("write config");
    let server = Server::start(&["--config", file.to_str().expect("utf-8 path")]);
    let list = server.url("/v1/broadcasts");
    let anonymous = http().get(&list).send().expect("GET");
    assert_eq!(anonymous.status().as_u16(), 401);
    let with_token = http().get(&list).bearer_auth(FILE_TOKEN).send().expect("GET");
    assert_eq!(with_token.status().as_u16(), 200);
    assert!(!server.log_text().contains(FILE_TOKEN));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/callcast.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    // It listens on every interface, so it needs a token, which comes from the environment.
    let open = config_check(dir.path(), &[], &["--config", example]);
    assert_eq!(open.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&open.stderr).contains("CALLCAST_API_TOKEN"));
    let out = config_check(dir.path(), &[("CALLCAST_API_TOKEN", "t0k3n")], &["--config", example]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(line_of(&stdout, "max_broadcasts").ends_with(example), "{stdout}");
}

/// `CALLCAST_CONFIG` names the config file as `--config` does; `./callcast.toml` is then not read at all.
#[test]
fn callcast_config_names_the_file_instead_of_callcast_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("callcast.toml"),
        "latency_ms = 90\nmedia_timeout_s = 9\n",
    )
    .expect("write");
    let named = dir.path().join("named.toml");
    std::fs::write(&named, "latency_ms = 70\n").expect("write");
    let named = named.to_str().expect("utf-8 path");
    let out = config_check(dir.path(), &[("CALLCAST_CONFIG", named)], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(line_of(&stdout, "latency_ms"), format!("latency_ms = 70  # {named}"));
    assert_eq!(line_of(&stdout, "media_timeout_s"), "media_timeout_s = 5  # default");

    let out = config_check(dir.path(), &[("CALLCAST_CONFIG", "missing.toml")], &[]);
    assert_eq!(out.status.code(), Some(2), "a named file that is not there is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

/// The status of `method path` on `server` with `token` as a bearer token (and `body` as an SDP offer).
fn status_with(server: &Server, method: reqwest::Method, path: &str, token: &str, body: &str) -> u16 {
    http()
        .request(method, server.url(path))
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(body.to_string())
        .send()
        .expect("request")
        .status()
        .as_u16()
}

/// `serve` reads its settings from the file `CALLCAST_CONFIG` names, and a token that looks like a number
/// there (a TOML string) is that string.
#[test]
fn serve_reads_the_file_callcast_config_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("named.toml");
    std::fs::write(&file, "api_tokens = [\"007\"]\n").expect("write config");
    let server = Server::start_with_env(&[], &[("CALLCAST_CONFIG", file.to_str().expect("utf-8 path"))]);
    let list = server.url("/v1/broadcasts");
    assert_eq!(http().get(&list).send().expect("GET").status().as_u16(), 401);
    assert_eq!(
        status_with(&server, reqwest::Method::GET, "/v1/broadcasts", "007", ""),
        200
    );
    assert_eq!(
        status_with(&server, reqwest::Method::GET, "/v1/broadcasts", "7", ""),
        401
    );
}

/// Token variables are taken verbatim: `007` stays `007` (figment's own parsing would make it the number 7),
/// `0.50` stays `0.50`, `1e3` stays `1e3`, in every token variable.
#[test]
fn tokens_from_the_environment_that_look_like_numbers_are_taken_verbatim() {
    let server = Server::start_with_env(
        &[],
        &[
            ("CALLCAST_API_TOKEN", "007"),
            ("CALLCAST_READ_TOKEN", "0.50"),
            ("CALLCAST_WHIP_TOKEN", "1e3"),
            ("CALLCAST_ROOM_TOKEN", "stage=0042"),
        ],
    );
    let get = |token: &str| status_with(&server, reqwest::Method::GET, "/v1/broadcasts", token, "");
    for (token, code) in [("007", 200), ("7", 401), ("0.50", 200), ("0.5", 401)] {
        assert_eq!(get(token), code, "GET /v1/broadcasts with {token:?}");
    }
    // A publisher token that is accepted meets the offer check (400); one that is not, 401.
    let publish = |token: &str| status_with(&server, reqwest::Method::POST, "/v1/rooms/stage/whip", token, "v=0");
    for (token, code) in [("1e3", 400), ("1000", 401), ("0042", 400), ("42", 401)] {
        assert_eq!(publish(token), code, "WHIP into stage with {token:?}");
    }
}

/// Storage credentials from the standard AWS variables, temporary ones (`AWS_SESSION_TOKEN`) included: shown
/// as `***` from the environment, never in clear; a session token without the keys it belongs to is refused.
#[test]
fn storage_credentials_come_from_the_aws_variables_and_stay_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aws = [
        ("CALLCAST_STORAGE_URL", "s3://shows/prod"),
        ("AWS_ACCESS_KEY_ID", "ASIATEMPKEYID7"),
        ("AWS_SECRET_ACCESS_KEY", "temp-secret-access-key"),
        ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzSESSIONTOKEN//x+y="),
        ("AWS_REGION", "eu-west-3"),
    ];
    let out = config_check(dir.path(), &aws, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for key in [
        "storage_access_key_id",
        "storage_secret_access_key",
        "storage_session_token",
    ] {
        assert_eq!(line_of(&stdout, key), format!("{key} = \"***\"  # environment"));
    }
    assert_eq!(
        line_of(&stdout, "storage_region"),
        "storage_region = \"eu-west-3\"  # environment"
    );
    for (_, value) in &aws[1..4] {
        assert!(!stdout.contains(value), "{value} in:\n{stdout}");
    }

    let out = config_check(dir.path(), &[aws[0], aws[3]], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("storage_session_token"), "{stderr}");
    assert!(!stderr.contains(aws[3].1), "{stderr}");
}
