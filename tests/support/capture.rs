//! HEP capture's real consumers: sngrep collecting HEP into a pcap without its screen, and
//! tshark reading the SIP messages back out of it (tshark has no HEP dissector; sngrep
//! unwraps HEP into the pcap).

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long sngrep may take to bind, and the pcap to show every message.
pub const TOOL_WAIT: Duration = Duration::from_secs(20);

/// Panics with what to install when `tool` cannot be run.
pub fn require(tool: &str, package: &str, version_arg: &str) {
    match Command::new(tool).arg(version_arg).output() {
        Ok(_) => {}
        Err(e) => panic!(
            "{tool} is needed by this test and cannot be run ({e}): install the Debian package \
             `{package}` (lab/install-deps.sh does)"
        ),
    }
}

/// sngrep collecting HEP into a pcap; killed on drop.
pub struct Sngrep {
    child: Child,
    pub pcap: PathBuf,
    log: PathBuf,
}

impl Drop for Sngrep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sngrep {
    /// Starts `sngrep -N -q -L udp:127.0.0.1:PORT -O dir/capture.pcap` on a free port and
    /// waits until it holds the port.
    pub fn start(dir: &Path) -> (Sngrep, SocketAddr) {
        Sngrep::start_with(Command::new("sngrep"), dir)
    }

    /// [`Sngrep::start`] with `cmd` as the sngrep program (e.g. inside a lab host, called from
    /// a thread in that host's namespace, where the port is checked).
    pub fn start_with(mut cmd: Command, dir: &Path) -> (Sngrep, SocketAddr) {
        let port = StdUdp::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let pcap = dir.join("capture.pcap");
        let log = dir.join("sngrep.log");
        let out = std::fs::File::create(&log).expect("sngrep log");
        let child = cmd
            .args(["-N", "-q", "-L", &format!("udp:{addr}"), "-O"])
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn sngrep");
        let mut s = Sngrep { child, pcap, log };
        let end = Instant::now() + TOOL_WAIT;
        // Listening: the port can no longer be bound by anyone else.
        while StdUdp::bind(addr).is_ok() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sngrep exited ({status}): {}", s.log_text());
            }
            assert!(
                Instant::now() < end,
                "sngrep did not bind {addr} in {TOOL_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (s, addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One SIP message as tshark shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub method: String,
    pub status: String,
    pub call_id: String,
}

/// `tshark -r pcap -Y sip -T fields ...`, one [`Seen`] per SIP packet.
pub fn tshark(pcap: &Path) -> Vec<Seen> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", "sip", "-T", "fields", "-E", "separator=/t"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .args([
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.Call-ID",
        ])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let addr = |ip: &str, port: &str| format!("{ip}:{port}").parse().ok();
            Some(Seen {
                src: addr(f.first()?, f.get(2)?)?,
                dst: addr(f.get(1)?, f.get(3)?)?,
                method: f.get(4)?.to_string(),
                status: f.get(5)?.to_string(),
                call_id: f.get(6)?.to_string(),
            })
        })
        .collect()
}

/// What tshark should show for one OPTIONS (Call-ID `BRANCH@test`) from `client` answered by
/// `server`: the request, then its 200.
pub fn exchange(branch: &str, client: SocketAddr, server: SocketAddr) -> [Seen; 2] {
    let call_id = format!("{branch}@test");
    [
        Seen {
            src: client,
            dst: server,
            method: "OPTIONS".into(),
            status: String::new(),
            call_id: call_id.clone(),
        },
        Seen {
            src: server,
            dst: client,
            method: String::new(),
            status: "200".into(),
            call_id,
        },
    ]
}

/// Reads `pcap` until tshark shows everything in `want` (sngrep writes as packets come), at
/// most [`TOOL_WAIT`]; returns what it last showed.
pub fn wait_for(pcap: &Path, want: &[Seen]) -> Vec<Seen> {
    let end = Instant::now() + TOOL_WAIT;
    loop {
        let seen = tshark(pcap);
        if want.iter().all(|w| seen.contains(w)) || Instant::now() >= end {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
