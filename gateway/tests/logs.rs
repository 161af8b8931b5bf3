//! Logs of `sipwire run`: `--log-format json` writes one JSON object per line; `sipwire
//! log-level` changes the filter of the running process (a debug line appears after it);
//! SIP bodies stay out of the logs unless `--log-sip-bodies`.

mod ops_support;

use ops_support::tcp_config as config;

use ops_support::{drain, output, Gateway};
use std::path::Path;
use std::time::Duration;

fn log_level(dir: &Path, directives: Option<&str>) -> (bool, String, String) {
    let state = dir.join("state");
    let mut args = vec!["log-level", "--state-dir", state.to_str().expect("utf-8")];
    args.extend(directives);
    let out = output(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn json_lines_and_a_level_changed_at_run_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(&config(dir.path()), &["--log-format", "json"], &[]);
    let tcp = gw.listener("tcp");

    // At `info`, a closed connection logs nothing.
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, filter, _) = log_level(dir.path(), None);
    assert!(ok);
    assert_eq!(filter, "info");

    let (ok, filter, err) = log_level(dir.path(), Some("info,sipwire::transport=debug"));
    assert!(ok, "{err}");
    assert!(filter.contains("sipwire::transport=debug"), "{filter}");
    let (changed, before) = ops_support::wait_for(&gw.stderr, "the filter change", |l| {
        l.contains("log filter changed")
    });
    assert!(
        !before.iter().any(|l| l.contains("flow closed")),
        "{before:?}"
    );
    for l in &before {
        json(l);
    }
    let v = json(&changed);
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "log filter changed");
    assert_eq!(v["target"], "sipwire_gateway::admin");

    // Now the same closed connection logs at debug.
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");
    let closed = gw.wait_stderr("flow closed");
    let v = json(&closed);
    assert_eq!(v["level"], "DEBUG");
    assert!(
        v["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("sipwire::transport")),
        "{v}"
    );
    // Everything else written meanwhile is JSON too, one object per line.
    for l in drain(&gw.stderr, Duration::from_millis(200)) {
        json(&l);
    }

    // A filter that does not parse is refused; the old one stays.
    let (ok, _, err) = log_level(dir.path(), Some("sipwire=loud"));
    assert!(!ok);
    assert!(err.contains("invalid log filter"), "{err}");
    let (_, filter, _) = log_level(dir.path(), None);
    assert!(filter.contains("sipwire::transport=debug"), "{filter}");
}

fn message_text_logged(flag: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut global = vec![];
    if flag {
        global.push("--log-sip-bodies");
    }
    let gw = Gateway::start(
        &config(dir.path()),
        &global,
        &[("SIPWIRE_LOG", "info,sipwire_gateway::sip=trace")],
    );
    assert_eq!(
        ops_support::options_over_tcp(gw.listener("tcp"), "secret-sdp-body"),
        "SIP/2.0 200 OK"
    );
    gw.wait_stderr("SIP message received");
    gw.wait_stderr("SIP message text")
}

#[test]
fn sip_bodies_are_logged_only_with_the_flag() {
    let without = message_text_logged(false);
    assert!(without.contains("Content-Length: 15"), "{without}");
    assert!(!without.contains("secret-sdp-body"), "{without}");
    assert!(
        without.contains("[body of 15 bytes not logged"),
        "{without}"
    );
    let with = message_text_logged(true);
    assert!(with.contains("secret-sdp-body"), "{with}");
}
