//! Received messages split over N receivers ("shards") by their Call-ID, so that N
//! independent single-threaded cores (the proxy's) can run on N threads.
//!
//! Every message of one transaction or dialog — the request, its retransmissions, CANCEL,
//! ACK, in-dialog requests and every response — carries the same Call-ID (RFC 3261 §8.1.1.4,
//! §12), so a rule on the Call-ID alone sends them all to the same shard without any shared
//! state. The transport's readers pick the shard themselves: no extra channel hop.

use tokio::sync::mpsc::{self, error::SendError, error::TrySendError};

use super::manager::Incoming;

/// The shard (`0..shards`) of a message with this Call-ID. A message without one (an empty
/// value) goes to shard 0, where it is handled as with one shard. `shards` 0 counts as 1.
///
/// FNV-1a over the bytes as they are on the wire: Call-IDs are compared byte for byte
/// (RFC 3261 §20.8), and the hash is the same in every process and run, so a test or a tool
/// can predict it. A peer choosing Call-IDs can only put its own calls on one shard, which
/// it could do by sending fewer calls.
pub fn shard_of(call_id: &[u8], shards: usize) -> usize {
    if shards <= 1 || call_id.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits are its weakest: fold the high half in first.
    let h = h ^ (h >> 32);
    // `shards` is small (a thread count), the remainder fits.
    (h % shards as u64) as usize
}

/// The senders of every shard's receiver.
#[derive(Debug)]
pub(crate) struct IncomingQueues {
    /// Shard 0's sender: what `senders` holds first, kept apart so that no lookup can miss.
    first: mpsc::Sender<Incoming>,
    /// Every shard's, shard 0 included.
    senders: Box<[mpsc::Sender<Incoming>]>,
}

impl IncomingQueues {
    /// `shards` queues (at least one) of `capacity` messages each, and their receivers.
    pub(crate) fn new(
        shards: usize,
        capacity: usize,
    ) -> (IncomingQueues, Vec<mpsc::Receiver<Incoming>>) {
        let (senders, receivers) = (0..shards.max(1))
            .map(|_| mpsc::channel(capacity.max(1)))
            .unzip::<_, _, Vec<_>, Vec<_>>();
        let mut senders = senders;
        let first = match senders.first() {
            Some(s) => s.clone(),
            // `0..shards.max(1)` made one at least; an empty set gets a closed queue.
            None => {
                let (s, _) = mpsc::channel(1);
                senders.push(s.clone());
                s
            }
        };
        (
            IncomingQueues {
                first,
                senders: senders.into_boxed_slice(),
            },
            receivers,
        )
    }

    /// How many shards.
    pub(crate) fn shards(&self) -> usize {
        self.senders.len()
    }

    fn sender_for(&self, inc: &Incoming) -> &mpsc::Sender<Incoming> {
        let i = shard_of(inc.message.call_id().as_bytes(), self.senders.len());
        // `shard_of` is below the length; shard 0 is the fallback all the same.
        self.senders.get(i).unwrap_or(&self.first)
    }

    /// Hands `inc` to its shard without waiting. The error gives the message back, as
    /// `mpsc::Sender::try_send`'s does (a stream driver waits with it when the queue is full).
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_send(&self, inc: Incoming) -> Result<(), TrySendError<Incoming>> {
        self.sender_for(&inc).try_send(inc)
    }

    /// Hands `inc` to its shard, waiting while its queue is full.
    #[allow(clippy::result_large_err)]
    pub(crate) async fn send(&self, inc: Incoming) -> Result<(), SendError<Incoming>> {
        self.sender_for(&inc).send(inc).await
    }
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    #[test]
    fn one_shard_takes_everything() {
        for id in [&b"a@b"[..], b"", b"whatever-1234@host"] {
            assert_eq!(shard_of(id, 1), 0);
            assert_eq!(shard_of(id, 0), 0);
        }
    }

    #[test]
    fn the_same_call_id_always_goes_to_the_same_shard() {
        for n in 2..=8 {
            for i in 0..200 {
                let id = format!("{i:08x}-call@10.0.0.1");
                let s = shard_of(id.as_bytes(), n);
                assert!(s < n);
                assert_eq!(s, shard_of(id.clone().as_bytes(), n));
            }
        }
    }

    #[test]
    fn no_call_id_goes_to_shard_0() {
        assert_eq!(shard_of(b"", 4), 0);
    }

    #[test]
    fn call_ids_spread_over_every_shard() {
        // Generators' Call-IDs differ in a counter only: they must still spread evenly.
        for n in [2usize, 3, 4, 8] {
            let mut counts = vec![0usize; n];
            let total = 10_000;
            for i in 0..total {
                counts[shard_of(format!("{i}@sipload").as_bytes(), n)] += 1;
            }
            let even = total / n;
            for (s, c) in counts.iter().enumerate() {
                assert!(
                    c * 10 > even * 9 && c * 10 < even * 11,
                    "{n} shards: shard {s} got {c} of {total}"
                );
            }
        }
    }
}
