//! What the four machines share: the action queue, the transport's reliability and the
//! timer values, and the one-way trip to Terminated.

use std::collections::VecDeque;

use crate::TransportKind;

use super::action::Action;
use super::error::TransactionError;
use super::timers::TimerConfig;

#[derive(Debug, Clone)]
pub(crate) struct Core {
    actions: VecDeque<Action>,
    pub(crate) reliable: bool,
    pub(crate) timers: TimerConfig,
    terminated: bool,
}

impl Core {
    pub(crate) fn new(
        transport: TransportKind,
        timers: TimerConfig,
    ) -> Result<Core, TransactionError> {
        timers.check()?;
        Ok(Core {
            actions: VecDeque::new(),
            reliable: transport.is_reliable(),
            timers,
            terminated: false,
        })
    }

    /// Queues an action; nothing is queued after Terminated.
    pub(crate) fn push(&mut self, action: Action) {
        if !self.terminated {
            self.actions.push_back(action);
        }
    }

    /// Queues Terminated once; the caller has set its state and cleared its timers.
    pub(crate) fn terminate(&mut self) {
        self.push(Action::Terminated);
        self.terminated = true;
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.terminated
    }

    pub(crate) fn poll(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(crate) fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// The accessors every transaction machine shares (its key, state, next deadline and
/// actions): the four machines differ in their states and timers, not in these. Each
/// machine has the fields `key`, `state` and `core` and a `slots()` of its timers.
macro_rules! machine_accessors {
    ($machine:ident, $key:ty) => {
        impl $machine {
            /// The key messages are matched with.
            pub fn key(&self) -> &$key {
                &self.key
            }

            /// The current state.
            pub fn state(&self) -> State {
                self.state
            }

            /// When `handle_timeout` must run next.
            pub fn deadline(&self) -> Option<Instant> {
                super::timers::earliest(&self.slots())
            }

            /// The next action, in order.
            pub fn poll_action(&mut self) -> Option<Action> {
                self.core.poll()
            }

            /// Actions are waiting to be polled.
            pub(crate) fn has_actions(&self) -> bool {
                self.core.has_actions()
            }
        }
    };
}
pub(crate) use machine_accessors;
