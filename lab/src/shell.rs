//! Running `ip`, `tc` and friends with errors that carry the command and its stderr.

use crate::LabError;
use std::process::Command;

/// Checks that we are root and that iproute2 is there, once per topology.
pub(crate) fn preflight() -> Result<(), LabError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(LabError::NotRoot);
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err(LabError::MissingProgram("ip (iproute2)"));
    }
    Ok(())
}

/// Runs a command to completion; a non-zero exit is an error with its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, LabError> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| LabError::Io {
        context: format!("running {line}"),
        source,
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip <args>` in the root namespace.
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").args(args))
}

/// `ip -n <netns> <args>`.
pub(crate) fn ip_in(netns: &str, args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").arg("-n").arg(netns).args(args))
}
