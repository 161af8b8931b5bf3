//! Typed errors of the codec. Error texts contain no input bytes, only fixed words and
//! numbers, so they can go into a reason phrase as they are.

/// What a size limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The whole message.
    Message,
    /// The header block.
    Headers,
    /// The body.
    Body,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Message => "message",
            LimitKind::Headers => "header block",
            LimitKind::Body => "body",
        })
    }
}

/// A message that cannot be parsed (or is refused by a limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No bytes (or only line breaks).
    #[error("empty message")]
    Empty,
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("malformed start line, {0}")]
    BadStartLine(&'static str),
    /// A well-formed SIP-Version other than SIP/2.0 (answer 505).
    #[error("unsupported SIP version")]
    BadVersion,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    BadStatusCode,
    /// The Request-URI is not a URI a request may carry.
    #[error("malformed Request-URI, {0}")]
    BadRequestUri(&'static str),
    /// A header name is empty or has non-token characters.
    #[error("malformed header name")]
    BadHeaderName,
    /// A header line has no colon, or a continuation line has no header.
    #[error("malformed header line, {0}")]
    BadHeaderLine(&'static str),
    /// A CR or LF that is not part of a CRLF pair.
    #[error("bare CR or LF")]
    BadLineEnding,
    /// The header block is not terminated by an empty line.
    #[error("header block not terminated")]
    UnterminatedHeaders,
    /// A header every request and response must carry is absent.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// A header that may appear only once appears several times.
    #[error("duplicate header {0}")]
    DuplicateHeader(&'static str),
    /// A Via value does not follow RFC 3261 §20.42.
    #[error("malformed Via, {0}")]
    BadVia(&'static str),
    /// The CSeq header is malformed or its number overflows 32 bits.
    #[error("malformed CSeq, {0}")]
    BadCSeq(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// Content-Length is not a decimal number.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// Several Content-Length headers disagree.
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    /// Max-Forwards is not a number in 0..=255.
    #[error("malformed Max-Forwards")]
    BadMaxForwards,
    /// Call-ID is empty or has characters outside `word`.
    #[error("malformed Call-ID")]
    BadCallId,
    /// A From, To, Contact, Route or Record-Route value is malformed.
    #[error("malformed {0} value, {1}")]
    BadNameAddr(&'static str, &'static str),
    /// A SIP or SIPS URI is malformed.
    #[error("malformed URI, {0}")]
    BadUri(&'static str),
    /// A comma-separated list is malformed (empty element, unbalanced quote or bracket).
    #[error("malformed header value, {0}")]
    BadValue(&'static str),
    /// A size limit was exceeded (answer 513).
    #[error("{what} too large, {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: LimitKind,
        /// Its size (or a lower bound of it).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// More header lines than allowed (answer 513).
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    /// Fewer body bytes than Content-Length announces (RFC 3261 §18.3).
    #[error("body truncated, Content-Length {expected} but {got} bytes")]
    TruncatedBody {
        /// The Content-Length value.
        expected: usize,
        /// The body bytes present.
        got: usize,
    },
}

impl ParseError {
    /// The status code a server answers to a request with this error: 513 for size
    /// limits, 505 for an unknown SIP version, 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } | ParseError::TooManyHeaders(_) => 513,
            ParseError::BadVersion => 505,
            _ => 400,
        }
    }
}

/// Errors of the stream framer. After one of these the stream is out of sync and the
/// connection must be closed (after an optional error response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A message on a stream has no Content-Length (RFC 3261 §18.3).
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    /// Content-Length is malformed or several disagree.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// A CR or LF that is not part of a CRLF pair in the header block.
    #[error("bare CR or LF in the header block")]
    BadLineEnding,
    /// A size limit was exceeded.
    #[error("{what} too large, {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: LimitKind,
        /// Its size (or a lower bound of it).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl FramingError {
    /// The parse error with the same meaning, for building an error response.
    pub fn to_parse_error(&self) -> ParseError {
        match *self {
            FramingError::MissingContentLength => ParseError::MissingHeader("Content-Length"),
            FramingError::BadContentLength => ParseError::BadContentLength,
            FramingError::BadLineEnding => ParseError::BadLineEnding,
            FramingError::TooLarge { what, size, limit } => {
                ParseError::TooLarge { what, size, limit }
            }
        }
    }

    /// The status code to answer a request with (400 or 513).
    pub fn status_code(&self) -> u16 {
        self.to_parse_error().status_code()
    }
}

/// Errors of message editing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The message has no Via to edit.
    #[error("no Via header")]
    NoVia,
    /// The message has no Route to remove.
    #[error("no Route header")]
    NoRoute,
    /// Max-Forwards is 0: the request must not be forwarded (answer 483).
    #[error("Max-Forwards is zero")]
    TooManyHops,
    /// A value given to the editor would break the message (CR, LF or a bracket).
    #[error("value not allowed in a header, {0}")]
    BadValue(&'static str),
    /// Two edits touch the same bytes.
    #[error("overlapping edits")]
    Overlap,
    /// The header to edit is malformed.
    #[error(transparent)]
    Parse(#[from] ParseError),
}
