//! The reuse endpoint in force: a reload that changes `[alias]` puts a new one in the slot;
//! the relay and the admin socket take the current one for each message or request.

use std::sync::{Arc, RwLock};

use sipwire::endpoint::ReuseEndpoint;

/// A shared, replaceable [`ReuseEndpoint`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EndpointSlot(Arc<RwLock<ReuseEndpoint>>);

impl EndpointSlot {
    /// A slot holding `endpoint`.
    pub fn new(endpoint: ReuseEndpoint) -> EndpointSlot {
        EndpointSlot(Arc::new(RwLock::new(endpoint)))
    }

    /// The endpoint in force.
    pub fn get(&self) -> ReuseEndpoint {
        // Only whole values are stored; a poisoned lock still holds a usable one.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `endpoint` in force; returns the previous one.
    pub fn replace(&self, endpoint: ReuseEndpoint) -> ReuseEndpoint {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *g, endpoint)
    }
}

impl From<ReuseEndpoint> for EndpointSlot {
    fn from(endpoint: ReuseEndpoint) -> Self {
        EndpointSlot::new(endpoint)
    }
}
