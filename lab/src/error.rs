//! Errors of the lab, each saying what to fix.

/// Everything that can go wrong while building or using a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Namespaces and veth need root.
    #[error("the lab needs root (network namespaces, veth, tc): run the tests as root")]
    NotRoot,
    /// A required program is missing.
    #[error("`{0}` is not installed: run lab/install-deps.sh")]
    MissingProgram(&'static str),
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An I/O error while running a command or a thread.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// An address outside the documentation ranges (or malformed).
    #[error("address {0} is not in a documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)")]
    NotDocumentation(String),
    /// A malformed CIDR.
    #[error("malformed address/prefix {0}")]
    BadCidr(String),
    /// Two hosts with one label.
    #[error("host {0} already exists in this topology")]
    Duplicate(String),
    /// A name in a scenario that is not defined.
    #[error("scenario refers to unknown host {0}")]
    UnknownHost(String),
    /// A scenario file could not be read or parsed.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Entering the namespace failed.
    #[error("cannot enter network namespace {netns}: {source}")]
    Setns {
        /// The namespace.
        netns: String,
        /// The errno.
        source: nix::Error,
    },
    /// The task running inside a host panicked.
    #[error("the task inside host {0} panicked")]
    TaskPanicked(String),
    /// The DNS server did not come up.
    #[error("DNS server in host {host} did not start: {message}")]
    Dns {
        /// The host.
        host: String,
        /// Why.
        message: String,
    },
}
