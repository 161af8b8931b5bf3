//! The SIP wire codec: parsing, framing and editing SIP messages without copying.
