//! A lab host: one network namespace, and ways to run code in it.

use crate::{shell, LabError};
use std::future::Future;
use std::process::Command;

/// A network namespace standing for one machine of the lab. Cheap to clone; the [`crate::Topology`]
/// that created it deletes it.
#[derive(Debug, Clone)]
pub struct Host {
    name: String,
    netns: String,
}

impl Host {
    pub(crate) fn create(name: &str, netns: &str) -> Result<Self, LabError> {
        shell::ip(&["netns", "add", netns])?;
        let host = Self {
            name: name.to_owned(),
            netns: netns.to_owned(),
        };
        shell::ip_in(netns, &["link", "set", "lo", "up"])?;
        Ok(host)
    }

    pub(crate) fn destroy(&self) {
        if let Err(e) = shell::ip(&["netns", "del", &self.netns]) {
            tracing::warn!(netns = %self.netns, error = %e, "could not delete lab namespace");
        }
    }

    /// The label the test gave this host.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace's name (as listed by `ip netns`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// A command that runs `program` inside this host (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }

    /// Runs `ip <args>` inside this host.
    pub fn ip(&self, args: &[&str]) -> Result<String, LabError> {
        shell::ip_in(&self.netns, args)
    }

    /// Runs a program inside this host to completion and returns its stdout; a failure is an error.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        shell::run(self.command(program).args(args))
    }

    /// Writes a sysctl inside this host (e.g. `net/sctp/auth_enable` = `1`); the `net/` tree is per
    /// namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), LabError> {
        let path = format!("/proc/sys/{key}");
        if key.starts_with("net/sctp/") && !std::path::Path::new("/proc/sys/net/sctp").exists() {
            // The SCTP module autoloads on the first SCTP socket; a sysctl may come before that.
            shell::run(std::process::Command::new("modprobe").arg("sctp"))?;
        }
        let value = value.to_owned();
        self.spawn(move || {
            std::fs::write(&path, value).map_err(|source| LabError::Io {
                context: format!("writing {path}"),
                source,
            })
        })
        .join()
        .map_err(|_| LabError::TaskPanicked(self.name.clone()))???;
        Ok(())
    }

    /// Runs a blocking closure on a new thread that has entered this host's namespace. Sockets the
    /// closure creates belong to the host.
    pub fn spawn<F, R>(&self, f: F) -> std::thread::JoinHandle<Result<R, LabError>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let netns = self.netns.clone();
        std::thread::spawn(move || {
            enter(&netns)?;
            Ok(f())
        })
    }

    /// Runs an async task inside this host on its own thread and current-thread tokio runtime, and
    /// returns a handle to wait for its result from any thread or runtime.
    pub fn run<F, Fut, R>(&self, f: F) -> HostTask<R>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        let netns = self.netns.clone();
        let name = self.name.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let result = (|| {
                enter(&netns)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| LabError::Io {
                        context: format!("tokio runtime in {netns}"),
                        source,
                    })?;
                Ok(rt.block_on(f()))
            })();
            let _ = tx.send(result);
        });
        HostTask {
            name,
            rx,
            thread: Some(thread),
        }
    }
}

/// Moves the calling thread into the namespace (setns affects only this thread).
fn enter(netns: &str) -> Result<(), LabError> {
    let path = format!("/run/netns/{netns}");
    let file = std::fs::File::open(&path).map_err(|source| LabError::Io {
        context: format!("opening {path}"),
        source,
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        LabError::Setns {
            netns: netns.to_owned(),
            source,
        }
    })
}

/// An async task running inside a host (see [`Host::run`]).
#[derive(Debug)]
pub struct HostTask<R> {
    name: String,
    rx: tokio::sync::oneshot::Receiver<Result<R, LabError>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<R> HostTask<R> {
    /// Waits for the task from async code.
    pub async fn wait(mut self) -> Result<R, LabError> {
        let rx = std::mem::replace(&mut self.rx, tokio::sync::oneshot::channel().1);
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(LabError::TaskPanicked(self.name.clone())),
        }
    }

    /// Waits for the task from blocking code.
    pub fn join(mut self) -> Result<R, LabError> {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                return Err(LabError::TaskPanicked(self.name.clone()));
            }
        }
        match self.rx.try_recv() {
            Ok(r) => r,
            Err(_) => Err(LabError::TaskPanicked(self.name.clone())),
        }
    }
}
