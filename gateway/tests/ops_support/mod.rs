//! Runs the `sipwire` binary for the operations tests: `sipwire run` with extra arguments
//! and environment, both output streams read line by line (stdout for the start-up and
//! reload lines, stderr for the logs), and one-shot subcommands. The process is killed on
//! drop.
#![allow(dead_code)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long anything the tests wait for may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn sipwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipwire"))
}

/// Runs a subcommand to completion.
pub fn output(args: &[&str]) -> Output {
    sipwire().args(args).output().expect("run sipwire")
}

/// A running `sipwire run`.
pub struct Gateway {
    pub child: Child,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    /// Stdout up to and including `sipwire: ready`.
    pub startup: Vec<String>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads `rx` until a line satisfies `want`; panics after [`WAIT`]. Returns the line and
/// everything read before it.
pub fn wait_for(
    rx: &Receiver<String>,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> (String, Vec<String>) {
    let end = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if want(&l) => return (l, seen),
            Ok(l) => seen.push(l),
            Err(RecvTimeoutError::Timeout) => panic!("no {what} in {WAIT:?}; saw {seen:#?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("output closed before {what}; saw {seen:#?}")
            }
        }
    }
}

/// Everything `rx` yields within `d`.
pub fn drain(rx: &Receiver<String>, d: Duration) -> Vec<String> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        out.push(l);
    }
    out
}

impl Gateway {
    /// Starts `sipwire [global args] run --config <config>` with `env` and waits for
    /// `ready`.
    pub fn start(config: &Path, global: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut cmd = sipwire();
        cmd.args(global)
            .args(["run", "--config"])
            .arg(config)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("SIPWIRE_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sipwire run");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = lines(child.stderr.take().expect("stderr"));
        let (ready, startup) = wait_for(&stdout, "`sipwire: ready`", |l| l == "sipwire: ready");
        let mut startup = startup;
        startup.push(ready);
        Gateway {
            child,
            stdout,
            stderr,
            startup,
        }
    }

    /// The address of the listener of this transport (`udp`, `tcp`, `tls`).
    pub fn listener(&self, transport: &str) -> SocketAddr {
        let prefix = format!("sipwire: listening {transport} ");
        self.startup
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {transport} listener in {:?}", self.startup))
    }

    /// Sends a signal (`HUP`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for a stdout line equal to `line`.
    pub fn wait_stdout(&self, line: &str) -> Vec<String> {
        wait_for(&self.stdout, &format!("{line:?} on stdout"), |l| l == line).1
    }

    /// Waits for a stderr line containing `needle`; returns that line.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_for(&self.stderr, &format!("{needle:?} on stderr"), |l| {
            l.contains(needle)
        })
        .0
    }
}

/// An OPTIONS over a new TCP connection to `addr`; the status line of the answer.
pub fn options_over_tcp(addr: SocketAddr, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let local = s.local_addr().expect("local");
    let req = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@{local}>;tag=1\r\nTo: <sip:{addr}>\r\n\
         Call-ID: ops-{}\r\nCSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        local.port(),
        local.port(),
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let mut b = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read");
        assert!(n > 0, "connection closed without an answer");
        buf.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// A configuration file in `dir`: one TCP listener on a free loopback port, the state
/// directory under `dir`.
pub fn tcp_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("sipwire.toml");
    std::fs::write(
        &path,
        format!(
            "[[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
             [state]\ndir = '{}'\n",
            dir.join("state").display()
        ),
    )
    .expect("write");
    path
}
