//! Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4). Pure: decided from the received
//! request's top Via and the flow it arrived on.

use std::net::SocketAddr;

use crate::transport::{Flow, Incoming};
use crate::TransportKind;

/// How to send the response to a received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseRoute {
    /// On the flow the request arrived on: a reliable transport's connection (or
    /// association), or UDP back to the source address and port.
    Flow(Flow),
    /// UDP from the flow's socket to another address: the request carried no `rport`, so
    /// the response goes to the `received` address (or the source IP) at the sent-by port.
    Datagram {
        /// The UDP flow whose socket sends.
        flow: Flow,
        /// Destination.
        to: SocketAddr,
    },
}

/// The route for a response to `request` (the [`Incoming`] that carried it). A reliable
/// transport answers on the same flow; when that flow has closed the caller opens a new
/// connection to `received` at the sent-by port (§18.2.2), e.g. with
/// [`super::ReuseEndpoint::send_response`].
pub fn response_route(request: &Incoming) -> ResponseRoute {
    if request.transport() != TransportKind::Udp {
        return ResponseRoute::Flow(request.flow);
    }
    let Ok(via) = request.message.top_via() else {
        return ResponseRoute::Flow(request.flow);
    };
    if via.rport.is_some() {
        return ResponseRoute::Flow(request.flow);
    }
    let ip = via.received.unwrap_or(request.source.ip());
    let to = SocketAddr::new(ip, via.port.unwrap_or(5060));
    if to == request.source {
        ResponseRoute::Flow(request.flow)
    } else {
        ResponseRoute::Datagram {
            flow: request.flow,
            to,
        }
    }
}
