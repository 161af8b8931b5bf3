//! SCTP-AUTH (RFC 4895, RFC 6458 §8.1.20-8.1.25, §8.2.3): chunks to authenticate, shared keys, and
//! detecting whether the peer supports AUTH.
//!
//! The kernel only does AUTH when `net.sctp.auth_enable = 1` in the socket's network namespace
//! (default 0). Setting that sysctl is the caller's job (a system setting, not a socket option);
//! without it key operations fail with [`SctpError::AuthDisabled`].

use crate::error::{Result, SctpError};
use crate::ffi;
use crate::socket::{getsockopt, getsockopt_bytes, setsockopt, setsockopt_bytes};
use std::io;
use std::mem::size_of;
use std::os::fd::AsFd;

/// Chunk type of DATA, the usual chunk to authenticate.
pub const CHUNK_DATA: u8 = 0;
/// Longest key accepted (the kernel's field is a u16; keep it sane).
pub const MAX_KEY_LEN: usize = 4096;

fn auth_err(e: io::Error) -> SctpError {
    if e.raw_os_error() == Some(libc::EACCES) {
        SctpError::AuthDisabled(e)
    } else {
        SctpError::Io(e)
    }
}

/// Encodes `struct sctp_authkey` followed by the key bytes.
pub fn encode_authkey(assoc_id: i32, key_number: u16, key: &[u8]) -> Result<Vec<u8>> {
    if key.len() > MAX_KEY_LEN {
        return Err(SctpError::InvalidInput(
            "SCTP-AUTH key longer than 4096 bytes",
        ));
    }
    let mut b = Vec::with_capacity(size_of::<ffi::sctp_authkey>() + key.len());
    b.extend_from_slice(&assoc_id.to_ne_bytes());
    b.extend_from_slice(&key_number.to_ne_bytes());
    b.extend_from_slice(&(key.len() as u16).to_ne_bytes());
    b.extend_from_slice(key);
    Ok(b)
}

/// SCTP-AUTH operations on every SCTP socket type of this crate.
pub trait SctpAuth: AsFd {
    /// Requires `chunk_type` (e.g. [`CHUNK_DATA`]) to be authenticated on future associations.
    fn add_auth_chunk(&self, chunk_type: u8) -> Result<()> {
        let raw = ffi::sctp_authchunk {
            sauth_chunk: chunk_type,
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_AUTH_CHUNK, &raw).map_err(auth_err)?;
        Ok(())
    }

    /// Sets shared key `key_number` (`SCTP_AUTH_KEY`; assoc 0 = endpoint, for future associations).
    fn set_auth_key(&self, assoc_id: i32, key_number: u16, key: &[u8]) -> Result<()> {
        let b = encode_authkey(assoc_id, key_number, key)?;
        setsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_AUTH_KEY,
            b.as_ptr(),
            b.len(),
        )
        .map_err(auth_err)?;
        Ok(())
    }

    /// Makes `key_number` the key used for sending (`SCTP_AUTH_ACTIVE_KEY`).
    fn set_active_auth_key(&self, assoc_id: i32, key_number: u16) -> Result<()> {
        let raw = ffi::sctp_authkeyid {
            scact_assoc_id: assoc_id,
            scact_keynumber: key_number,
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_AUTH_ACTIVE_KEY, &raw)
            .map_err(auth_err)?;
        Ok(())
    }

    /// Reads the active key number.
    fn active_auth_key(&self, assoc_id: i32) -> Result<u16> {
        let mut raw = ffi::sctp_authkeyid {
            scact_assoc_id: assoc_id,
            scact_keynumber: 0,
        };
        getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_AUTH_ACTIVE_KEY,
            &mut raw,
        )
        .map_err(auth_err)?;
        Ok(raw.scact_keynumber)
    }

    /// Deletes a (non-active) key (`SCTP_AUTH_DELETE_KEY`).
    fn delete_auth_key(&self, assoc_id: i32, key_number: u16) -> Result<()> {
        let raw = ffi::sctp_authkeyid {
            scact_assoc_id: assoc_id,
            scact_keynumber: key_number,
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_AUTH_DELETE_KEY, &raw)
            .map_err(auth_err)?;
        Ok(())
    }

    /// Whether the peer of an association supports SCTP-AUTH (`SCTP_AUTH_SUPPORTED` on the
    /// association); with assoc 0 on a one-to-many socket: whether this endpoint has AUTH enabled.
    fn peer_auth_supported(&self, assoc_id: i32) -> Result<bool> {
        let mut raw = ffi::sctp_assoc_value {
            assoc_id,
            assoc_value: 0,
        };
        getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_AUTH_SUPPORTED,
            &mut raw,
        )?;
        Ok(raw.assoc_value != 0)
    }

    /// The chunk types the peer requires to be authenticated (`SCTP_PEER_AUTH_CHUNKS`). Fails with
    /// [`SctpError::AuthDisabled`] when either side has AUTH off.
    fn peer_auth_chunks(&self, assoc_id: i32) -> Result<Vec<u8>> {
        chunks(self.as_fd(), ffi::SCTP_PEER_AUTH_CHUNKS, assoc_id)
    }

    /// The chunk types this side requires to be authenticated (`SCTP_LOCAL_AUTH_CHUNKS`).
    fn local_auth_chunks(&self, assoc_id: i32) -> Result<Vec<u8>> {
        chunks(self.as_fd(), ffi::SCTP_LOCAL_AUTH_CHUNKS, assoc_id)
    }
}

fn chunks(fd: std::os::fd::BorrowedFd<'_>, name: libc::c_int, assoc_id: i32) -> Result<Vec<u8>> {
    let hdr = size_of::<ffi::sctp_authchunks>();
    let mut b = vec![0u8; hdr + 256];
    b[0..4].copy_from_slice(&assoc_id.to_ne_bytes());
    let n = getsockopt_bytes(fd, ffi::SOL_SCTP, name, b.as_mut_ptr(), b.len()).map_err(auth_err)?;
    let count = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]) as usize;
    b.get(hdr..hdr + count)
        .filter(|_| n >= hdr + count)
        .map(<[u8]>::to_vec)
        .ok_or(SctpError::Malformed {
            what: "auth chunk list",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authkey_encoding() {
        let b = encode_authkey(3, 1, b"secret").unwrap();
        assert_eq!(b.len(), 8 + 6);
        assert_eq!(&b[0..4], &3i32.to_ne_bytes());
        assert_eq!(&b[4..6], &1u16.to_ne_bytes());
        assert_eq!(&b[6..8], &6u16.to_ne_bytes());
        assert_eq!(&b[8..], b"secret");
        assert!(encode_authkey(0, 1, &vec![0; MAX_KEY_LEN + 1]).is_err());
    }

    #[test]
    fn eacces_means_auth_disabled() {
        assert!(matches!(
            auth_err(io::Error::from_raw_os_error(libc::EACCES)),
            SctpError::AuthDisabled(_)
        ));
        assert!(matches!(
            auth_err(io::Error::from_raw_os_error(libc::EINVAL)),
            SctpError::Io(_)
        ));
    }
}
