//! Size limits applied by the framer and the parser.

/// Size limits for one SIP message. The defaults fit IMS traffic (large REGISTER and
/// INVITE messages with many P- headers and multipart bodies) while bounding memory per
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line + headers + body), in bytes. Default 64 KiB,
    /// which also covers the 65,535-byte UDP requirement of RFC 3261 §18.1.1.
    pub max_message_bytes: usize,
    /// Largest header block (start line up to and including the empty line). Default 32 KiB.
    pub max_header_bytes: usize,
    /// Largest body (Content-Length value). Default 64 KiB.
    pub max_body_bytes: usize,
    /// Most header lines in one message. Default 256.
    pub max_headers: usize,
}

impl Limits {
    /// Default largest message: 64 KiB.
    pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;
    /// Default largest header block: 32 KiB.
    pub const DEFAULT_MAX_HEADER: usize = 32 * 1024;
    /// Default largest body: 64 KiB.
    pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
    /// Default largest number of header lines.
    pub const DEFAULT_MAX_HEADERS: usize = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE,
            max_header_bytes: Self::DEFAULT_MAX_HEADER,
            max_body_bytes: Self::DEFAULT_MAX_BODY,
            max_headers: Self::DEFAULT_MAX_HEADERS,
        }
    }
}
