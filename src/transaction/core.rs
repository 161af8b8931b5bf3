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
