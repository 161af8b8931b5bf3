//! Kamailio 5.6 as a peer: started in its own process group on a configuration from
//! lab/kamailio/, stopped with its workers. Its main process forks the workers; a SIGKILL of
//! the main process alone would leave them running (holding ports), so the whole group gets
//! SIGTERM, and SIGKILL whatever is left after 5 seconds.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Kamailio; stopped with its workers on drop.
pub struct Kamailio {
    child: Child,
    _run: tempfile::TempDir,
}

impl Kamailio {
    /// Starts `cmd` (the `kamailio` program, perhaps inside a lab host, with the caller's
    /// `-A` defines) in the foreground on configuration `cfg`, with small memory pools, its
    /// stderr log going to `log` (or nowhere).
    pub fn spawn(mut cmd: Command, cfg: &Path, log: Option<&Path>) -> Kamailio {
        let run = tempfile::tempdir().expect("tempdir");
        cmd.args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(run.path())
            .arg("-f")
            .arg(cfg)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(p) => Stdio::from(std::fs::File::create(p).expect("Kamailio log file")),
                None => Stdio::null(),
            });
        let child = cmd
            .spawn()
            .expect("kamailio runs (packages kamailio, kamailio-tls-modules, kamailio-sctp-modules; lab/install-deps.sh)");
        Kamailio { child, _run: run }
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let end = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}
