//! Shared helpers of the sipwire-sys lab tests (kernel SCTP between network namespaces).

#![allow(dead_code)]

use sipwire_lab::{Host, Topology};
use sipwire_sys::RecvBuf;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Error type of test tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result of test tasks.
pub type TResult<T = ()> = Result<T, BoxError>;

/// Generous per-step timeout: the VM is slow TCG emulation.
pub const STEP: Duration = Duration::from_secs(60);

/// Fails (never skips) when the kernel has no SCTP, naming the way to get it.
pub fn require_kernel_sctp() {
    // Checked with a plain runtime so the error is the crate's typed one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(async { sipwire_sys::kernel_sctp_available() }) {
        panic!("lab test needs kernel SCTP and root: {e}. Run it through lab/vm/run-in-vm.sh (lab/test-all.sh does)");
    }
}

/// Two hosts `a` and `b` on one link, IPv4 192.0.2.1/.2 or IPv6 2001:db8::1/::2.
pub fn pair(v6: bool) -> (Topology, Host, Host, IpAddr, IpAddr) {
    require_kernel_sctp();
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    let (aa, ba) = if v6 {
        ("2001:db8::1/64", "2001:db8::2/64")
    } else {
        ("192.0.2.1/24", "192.0.2.2/24")
    };
    lab.link(&a, &[aa], &b, &[ba]).expect("link");
    let ip = |s: &str| {
        s.split('/')
            .next()
            .and_then(|x| x.parse().ok())
            .expect("ip")
    };
    (lab, a, b, ip(aa), ip(ba))
}

/// A socket address.
pub fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// Receives the next user message (skipping notifications) as `(bytes, RecvInfo)`, within [`STEP`].
#[macro_export]
macro_rules! recv_msg {
    ($sock:expr, $buf:expr) => {
        loop {
            match tokio::time::timeout($crate::common::STEP, $sock.recv(&mut $buf)).await?? {
                sipwire_sys::Received::Message { data, info, .. } => break (data.to_vec(), info),
                sipwire_sys::Received::Notification(_) => continue,
                sipwire_sys::Received::Closed => return Err("association closed".into()),
            }
        }
    };
}

/// A fresh receive buffer with the default limit.
pub fn buf() -> RecvBuf {
    RecvBuf::default()
}

/// Joins a host task, turning lab and task errors into a panic with context.
pub fn join<T>(what: &str, t: sipwire_lab::HostTask<TResult<T>>) -> T {
    match t.join() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(e) => panic!("{what}: lab error {e}"),
    }
}
