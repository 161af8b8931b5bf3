//! Runs the `sipwire run` binary on a configuration file and reads what it prints: the start-up
//! lines up to `sipwire: ready`, then the rest through a channel. The process is killed on drop.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

/// How long `sipwire run` may take to print `ready`.
const READY: Duration = Duration::from_secs(30);

/// A running gateway.
pub struct Running {
    pub child: Child,
    /// What it prints after `sipwire: ready`.
    pub lines: Receiver<String>,
    /// What it printed up to and including `sipwire: ready`.
    pub startup: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `config` to `dir/sipwire.toml`, starts `sipwire run` on it and waits for `ready`.
pub fn start(dir: &Path, config: &str) -> Running {
    let path = dir.join("sipwire.toml");
    std::fs::write(&path, config).expect("write config");
    start_file(&path)
}

/// Starts `sipwire run --config <path>` and waits for `ready`.
pub fn start_file(path: &Path) -> Running {
    spawn_ready(Command::new(sipwire_bin()), path)
}

/// [`start`] inside a lab host (its network namespace, `ip netns exec`, which becomes the
/// gateway's process).
pub fn start_in(host: &sipwire_lab::Host, dir: &Path, config: &str) -> Running {
    let path = dir.join("sipwire.toml");
    std::fs::write(&path, config).expect("write config");
    spawn_ready(host.command(sipwire_bin()), &path)
}

fn spawn_ready(mut cmd: Command, path: &Path) -> Running {
    let mut child = cmd
        .args(["run", "--config"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sipwire");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let mut startup = Vec::new();
    loop {
        let l = lines
            .recv_timeout(READY)
            .expect("sipwire did not print `ready` in 30 s");
        let ready = l == "sipwire: ready";
        startup.push(l);
        if ready {
            break;
        }
    }
    Running {
        child,
        lines,
        startup,
    }
}

/// The development CA `sipwire run` writes into its state directory (`[tls] dev_ca`), as
/// trust roots.
pub fn dev_ca_roots(state: &Path) -> Arc<rustls::RootCertStore> {
    let pem = std::fs::read(state.join("dev-ca/ca.pem")).expect("dev CA written");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("dev CA PEM")).expect("dev CA");
    }
    Arc::new(roots)
}

impl Running {
    /// The rest of the first start-up line that began with `prefix`.
    pub fn printed(&self, prefix: &str) -> Option<&str> {
        self.startup.iter().find_map(|l| l.strip_prefix(prefix))
    }

    /// The address of the listener of this transport (`udp`, `tcp`, `tls`), from the
    /// `sipwire: listening <transport> <address> ...` line.
    pub fn listener(&self, transport: &str) -> SocketAddr {
        self.printed(&format!("sipwire: listening {transport} "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {transport} listener in {:?}", self.startup))
    }
}

/// The `sipwire` binary: cargo names it to the tests of its own crate (`sipwire-gateway`);
/// the library's tests compile this module too but never start it.
fn sipwire_bin() -> &'static str {
    match option_env!("CARGO_BIN_EXE_sipwire") {
        Some(path) => path,
        None => panic!("the sipwire binary is built for the sipwire-gateway crate's tests only"),
    }
}
