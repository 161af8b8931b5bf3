//! The error type of the SCTP socket layer.

use std::io;

/// What can go wrong with a kernel SCTP socket.
#[derive(Debug, thiserror::Error)]
pub enum SctpError {
    /// The running kernel has no SCTP (`socket()` gave `EPROTONOSUPPORT`/`ESOCKTNOSUPPORT`).
    #[error(
        "the kernel has no SCTP support (socket(IPPROTO_SCTP) failed: {0}); load it with \
         `modprobe sctp` (Debian/Ubuntu: package linux-modules-extra on some kernels), or use a \
         kernel built with CONFIG_IP_SCTP"
    )]
    NoKernelSctp(#[source] io::Error),
    /// A received message was larger than the receive limit; the rest of it was discarded.
    #[error("received SCTP message exceeds the {limit}-byte limit (stream {stream}, association {assoc_id}); discarded")]
    MessageTooLarge {
        /// The configured limit.
        limit: usize,
        /// Stream the message arrived on.
        stream: u16,
        /// Association it came from.
        assoc_id: i32,
    },
    /// SCTP-AUTH is disabled in this network namespace (`net.sctp.auth_enable = 0`).
    #[error("SCTP-AUTH is disabled: set sysctl net.sctp.auth_enable=1 in this network namespace before creating the socket ({0})")]
    AuthDisabled(#[source] io::Error),
    /// An argument cannot be expressed in the kernel ABI (e.g. an empty address list, a too long key).
    #[error("invalid argument: {0}")]
    InvalidInput(&'static str),
    /// The peer sent something the kernel delivered in a form we cannot decode.
    #[error("malformed {what} from the kernel")]
    Malformed {
        /// Which structure.
        what: &'static str,
    },
    /// Any other system call failure.
    #[error("SCTP socket call failed: {0}")]
    Io(#[from] io::Error),
}

impl SctpError {
    /// Maps an error of `socket()` to [`SctpError::NoKernelSctp`] when it means "no SCTP here".
    pub(crate) fn from_socket_call(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EPROTONOSUPPORT) | Some(libc::ESOCKTNOSUPPORT) => SctpError::NoKernelSctp(e),
            _ => SctpError::Io(e),
        }
    }

    /// True for errors that end the association or socket (as opposed to one bad message).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            SctpError::MessageTooLarge { .. } | SctpError::Malformed { .. }
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = SctpError> = std::result::Result<T, E>;
