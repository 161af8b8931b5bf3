//! One transport abstraction over UDP, TCP, TLS, SCTP, TLS-SCTP and DTLS-SCTP.
