//! SCTP where the tests run natively: on a kernel without SCTP (these machines), binding or
//! connecting SCTP is a clear error naming the cause, never a panic or a silent no-op; on a
//! kernel with SCTP, a loopback listener binds. (The SCTP transport itself is tested in the lab
//! VM: tests/lab_sctp_transport.rs.)

use std::net::SocketAddr;

use sipwire::transport::{sctp_available, Transport, TransportConfig, TransportError};
use sipwire::{Target, TransportKind};

#[tokio::test]
async fn sctp_is_a_clear_error_without_kernel_support_and_binds_with_it() {
    let (t, _rx) = Transport::new(TransportConfig::default());
    let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    match sctp_available() {
        Err(TransportError::NoKernelSctp(e)) => {
            let text = e.to_string();
            assert!(text.contains("no SCTP"), "{text}");
            let bind = t.bind_sctp(TransportKind::Sctp, &[local]).await;
            assert!(
                matches!(bind, Err(TransportError::NoKernelSctp(_))),
                "{bind:?}"
            );
            let target = Target::new(TransportKind::Sctp, "127.0.0.1:5060".parse().expect("addr"));
            let connect = t.connect(&target).await;
            assert!(
                matches!(connect, Err(TransportError::NoKernelSctp(_))),
                "{connect:?}"
            );
        }
        Err(other) => panic!("unexpected error from the SCTP probe: {other}"),
        Ok(()) => {
            let bound = t
                .bind_sctp(TransportKind::Sctp, &[local])
                .await
                .expect("bind SCTP on loopback");
            assert_ne!(bound[0].port(), 0);
        }
    }
    let wrong = t.bind_sctp(TransportKind::Tcp, &[local]).await;
    assert!(matches!(
        wrong,
        Err(TransportError::Unsupported(TransportKind::Tcp))
    ));
}
