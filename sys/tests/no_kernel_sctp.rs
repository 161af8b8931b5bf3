//! Host test: on a kernel without SCTP (this CI host: CONFIG_IP_SCTP unset) opening a socket gives
//! the typed `SctpError::NoKernelSctp`, never a panic or a hang. Where the kernel HAS SCTP the same
//! calls must succeed; the test checks whichever is true and fails on anything else.

use sipwire_sys::{Family, SctpError, SctpSocket, Style};

fn kernel_has_sctp() -> bool {
    // Independent of sipwire-sys: the sysctl directory exists only where SCTP is loaded.
    std::path::Path::new("/proc/sys/net/sctp").exists()
}

#[tokio::test]
async fn no_kernel_sctp_is_a_typed_error() {
    let r = SctpSocket::new(Style::OneToOne, Family::V4);
    let r6 = SctpSocket::new(Style::OneToMany, Family::V6);
    let probe = sipwire_sys::kernel_sctp_available();
    if kernel_has_sctp() {
        assert!(
            r.is_ok() && r6.is_ok() && probe.is_ok(),
            "kernel has SCTP but sockets failed: {r:?} {r6:?}"
        );
        return;
    }
    for e in [r.err(), r6.err(), probe.err()] {
        match e {
            Some(e @ SctpError::NoKernelSctp(_)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("no SCTP") && msg.contains("modprobe sctp"),
                    "{msg}"
                );
            }
            other => panic!("expected NoKernelSctp, got {other:?}"),
        }
    }
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let r = SctpSocket::new(Style::OneToOne, Family::V4);
    assert!(r.is_err());
}
