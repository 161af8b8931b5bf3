//! `sipwire check-config FILE`: every problem with its line and column, exit 0 and a
//! summary when valid; and `sipwire --help` lists every subcommand.

mod ops_support;

use ops_support::output;

struct Checked {
    ok: bool,
    stdout: String,
    stderr: String,
    /// The `FILE:LINE:COLUMN: message` lines, with the file name cut off.
    problems: Vec<String>,
}

fn check(text: &str) -> Checked {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sipwire.toml");
    std::fs::write(&path, text).expect("write");
    let out = output(&["check-config", path.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let prefix = format!("error: {}:", path.display());
    let problems = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect();
    Checked {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        problems,
    }
}

const TCP: &str = "[[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:5060'\n";

#[test]
fn a_valid_file_exits_0_with_a_summary() {
    let c = check(&format!(
        "{TCP}[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:5060'\n\
         [[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n\
         domain = 'sip.example.com'\n[tls]\ndev_ca = true\n"
    ));
    assert!(c.ok, "{}", c.stderr);
    let line = c.stdout.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.ends_with(
            "sipwire.toml: valid; 3 listeners: tcp (tcp 127.0.0.1:5060), udp (udp 127.0.0.1:5060), \
             tls (tls 127.0.0.1:5061); 1 domain: sip.example.com; relay stateful, 0 routes"
        ),
        "{line}"
    );
    // The embedded default, as packaged for /etc/sipwire/sipwire.toml, is valid too.
    let c = check(include_str!("../src/default.toml"));
    assert!(c.ok, "{}", c.stderr);
}

#[test]
fn a_syntax_error_is_located() {
    let c = check(&format!("{TCP}[limits\nmax_message = 1\n"));
    assert!(!c.ok);
    assert_eq!(
        c.problems,
        ["5:8: invalid table header; expected `.`, `]`"],
        "{}",
        c.stderr
    );
    assert!(c.stderr.contains("5 | [limits\n"), "{}", c.stderr);
}

#[test]
fn an_unknown_key_is_located() {
    let c = check(&format!("{TCP}[limits]\nmax_mesage = 1\n"));
    assert!(!c.ok);
    assert_eq!(c.problems.len(), 1, "{}", c.stderr);
    assert!(
        c.problems[0].starts_with("6:1: unknown field `max_mesage`, expected one of `max_message`"),
        "{}",
        c.stderr
    );
}

#[test]
fn a_wrong_type_is_located() {
    let c = check(&format!("{TCP}[limits]\nidle_timeout_secs = '600'\n"));
    assert!(!c.ok);
    assert_eq!(
        c.problems,
        ["6:21: invalid type: string \"600\", expected u64"],
        "{}",
        c.stderr
    );
}

#[test]
fn two_listeners_on_one_address_are_located() {
    let c = check(&format!(
        "{TCP}[[listener]]\nname = 'tcp2'\ntransport = 'tcp'\naddr = '127.0.0.1:5060'\n"
    ));
    assert!(!c.ok);
    assert_eq!(
        c.problems,
        [
            "8:1: listeners tcp and tcp2 both bind tcp 127.0.0.1:5060; expected each transport \
          and address once"
        ],
        "{}",
        c.stderr
    );
}

#[test]
fn a_tls_listener_without_certificate_is_located() {
    let c = check(&format!(
        "{TCP}\n[[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n"
    ));
    assert!(!c.ok);
    assert_eq!(
        c.problems,
        [
            "6:1: listener tls: TLS without a certificate; expected `cert` and `key` files, or \
          `[tls] dev_ca = true`"
        ],
        "{}",
        c.stderr
    );
}

#[test]
fn a_capture_section_is_summarized_and_its_problems_located() {
    let c = check(&format!(
        "{TCP}[capture]\ncollector = '127.0.0.1:9060'\ntransport = 'tcp'\ncapture_id = 7\n"
    ));
    assert!(c.ok, "{}", c.stderr);
    assert!(
        c.stdout
            .trim()
            .ends_with("; capture to tcp 127.0.0.1:9060 (capture id 7); relay stateful, 0 routes"),
        "{}",
        c.stdout
    );
    let c = check(&format!(
        "{TCP}[capture]\ncollector = '0.0.0.0:9060'\nqueue_messages = 0\ntransport = 'sctp'\n"
    ));
    assert!(!c.ok);
    // Keys and types first: the wrong transport; then the rules, once it is taken out.
    assert_eq!(c.problems.len(), 1, "{}", c.stderr);
    assert!(
        c.problems[0].starts_with("8:13: unknown variant `sctp`, expected `udp` or `tcp`"),
        "{}",
        c.stderr
    );
    let c = check(&format!(
        "{TCP}[capture]\ncollector = '0.0.0.0:9060'\nqueue_messages = 0\n"
    ));
    assert_eq!(
        c.problems,
        [
            "6:1: [capture] collector 0.0.0.0:9060 is not a destination; expected the \
             collector's address and port, e.g. 127.0.0.1:9060",
            "7:1: limit queue_messages = 0; expected a number greater than zero"
        ],
        "{}",
        c.stderr
    );
    let c = check(&format!("{TCP}[capture]\ntransport = 'udp'\n"));
    assert!(!c.ok);
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("missing field `collector`")),
        "{}",
        c.stderr
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    // Keys and types: three sections, three errors.
    let c = check(&format!(
        "{TCP}bogus = true\n[limits]\nmax_message = 'big'\n[alias]\naccept = 'yes'\nfoo = 1\n"
    ));
    assert!(!c.ok);
    let at: Vec<&str> = c
        .problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(at, ["5:1", "7:15", "9:10", "10:1"], "{}", c.stderr);
    assert!(c.stderr.ends_with("invalid, 4 problems\n"), "{}", c.stderr);
    // Rules: a UDP listener alone (twice), a duplicate, a bad domain, a zero limit; and the
    // domain's certificate file that does not exist.
    let c = check(
        "[[listener]]\nname = 'u'\ntransport = 'udp'\naddr = '127.0.0.1:5070'\n\
         [[listener]]\nname = 'u2'\ntransport = 'udp'\naddr = '127.0.0.1:5070'\n\
         [[tls.domains]]\nname = '*.example.com'\ncert = 'c.pem'\nkey = 'k.pem'\n\
         [limits]\nmax_connections = 0\n",
    );
    let at: Vec<&str> = c
        .problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        at,
        ["4:1", "8:1", "8:1", "10:1", "11:1", "14:1"],
        "{}",
        c.stderr
    );
}

#[test]
fn an_unreadable_certificate_is_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let c = check(&format!(
        "{TCP}[[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n\
         cert = '{0}'\nkey = '{0}'\n",
        missing.display()
    ));
    assert!(!c.ok);
    assert_eq!(c.problems.len(), 1, "{}", c.stderr);
    assert!(
        c.problems[0].starts_with(&format!("9:1: listener tls cert {}: ", missing.display())),
        "{}",
        c.stderr
    );
    assert!(
        c.problems[0].ends_with("expected a readable PEM file"),
        "{}",
        c.stderr
    );
}

#[test]
fn a_missing_file_exits_2() {
    let out = output(&["check-config", "/nonexistent/sipwire.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_every_subcommand_on_a_line() {
    let out = output(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "run",
        "check-config",
        "reload",
        "log-level",
        "alias-table",
        "parse",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("{cmd} missing from:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "{cmd} has no description: {line:?}"
        );
    }
    assert!(help.contains("--log-format"), "{help}");
}

#[test]
fn flood_problems_are_located() {
    let c = check(&format!(
        "{TCP}[flood]\nallow = ['10.0.0.0/8', '10.0.0.0/40', 'example.com']\n\
         request_burst = 0\nipv6_prefix = 0\naction = 'bounce'\n"
    ));
    assert!(!c.ok);
    // A bad value of a known type is reported alone (the text does not deserialize).
    assert_eq!(c.problems.len(), 1, "{}", c.stderr);
    assert!(
        c.problems[0].starts_with("9:10: unknown variant `bounce`, expected `reply` or `drop`"),
        "{}",
        c.stderr
    );
    let c = check(&format!(
        "{TCP}[flood]\nallow = ['10.0.0.0/8', '10.0.0.0/40', 'example.com']\n\
         request_burst = 0\nipv6_prefix = 0\n"
    ));
    assert!(!c.ok);
    assert_eq!(c.problems.len(), 4, "{}", c.stderr);
    assert!(
        c.problems[0].starts_with("6:24: [flood] allow entry \"10.0.0.0/40\": prefix length"),
        "{}",
        c.stderr
    );
    assert!(
        c.problems[1].starts_with("6:39: [flood] allow entry \"example.com\""),
        "{}",
        c.stderr
    );
    assert!(
        c.problems[2].starts_with("7:1: limit request_burst = 0"),
        "{}",
        c.stderr
    );
    assert!(
        c.problems[3].starts_with("8:1: [flood] ipv6_prefix = 0; expected 1 to 128"),
        "{}",
        c.stderr
    );
    let c = check(&format!(
        "{TCP}[flood]\nallow = ['10.0.0.0/8', '2001:db8::/32']\naction = 'drop'\n"
    ));
    assert!(c.ok, "{}", c.stderr);
}

#[test]
fn route_and_proxy_problems_are_located() {
    let c = check(&format!(
        "{TCP}[proxy]\nt1_ms = 500\nt2_ms = 100\n\
         [[route]]\ndomain = 'example.net'\nlistener = 'nope'\n\
         [[route.target]]\ntransport = 'udp'\naddress = '10.0.0.1:5060'\n\
         [[route.target]]\ntransport = 'tcp'\n"
    ));
    assert!(!c.ok);
    let at: Vec<&str> = c
        .problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(at, ["7:1", "10:1", "12:1", "14:1"], "{}", c.stderr);
    assert!(
        c.stderr.contains("t2_ms = 100 is below t1_ms = 500"),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr.contains("unknown listener \"nope\""),
        "{}",
        c.stderr
    );
    assert!(c.stderr.contains("no udp listener"), "{}", c.stderr);
    assert!(
        c.stderr.contains("exactly one of `address`"),
        "{}",
        c.stderr
    );
    let ok = check(&format!(
        "{TCP}[[route]]\ndomain = '*.example.net'\nstateless = true\n\
         [[route.target]]\ntransport = 'tcp'\nhost = 'core.example.net'\n"
    ));
    assert!(ok.ok, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("relay stateful, 1 route"),
        "{}",
        ok.stdout
    );
}

/// RFC 5630 §5.3 best-effort TLS: accepted with a TLS listener to send from, refused (and
/// located, in `[proxy]` and in a route) without one.
#[test]
fn best_effort_tls_needs_a_tls_listener() {
    let tls = "[[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n\
               [tls]\ndev_ca = true\n";
    let c = check(&format!(
        "{TCP}{tls}[proxy]\nbest_effort_tls = true\n\
         [[route]]\ndomain = 'example.net'\nbest_effort_tls = false\n\
         [[route.target]]\ntransport = 'tcp'\nhost = 'core.example.net'\n"
    ));
    assert!(c.ok, "{}", c.stderr);
    let c = check(&format!(
        "{TCP}[proxy]\nbest_effort_tls = true\n\
         [[route]]\ndomain = 'example.net'\nbest_effort_tls = true\n\
         [[route.target]]\ntransport = 'tcp'\nhost = 'core.example.net'\n"
    ));
    assert!(!c.ok);
    let msg = "best_effort_tls needs a tls listener to send from; expected a [[listener]] with \
               transport = \"tls\"";
    assert_eq!(
        c.problems,
        [format!("6:1: {msg}"), format!("9:1: {msg}")],
        "{}",
        c.stderr
    );
}
