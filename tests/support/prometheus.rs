//! Reading a Prometheus exporter the way a scraper does: one HTTP GET, then one series'
//! value out of the text exposition.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::poll::WAIT;

/// The exposition of the exporter at `addr`.
pub async fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connect to the exporter");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .expect("exporter answers in time")
        .expect("read");
    out
}

/// The value of one series, written as the exporter writes it (name, then any labels in its
/// order); `None` when absent.
pub fn value(exported: &str, series: &str) -> Option<f64> {
    exported
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
