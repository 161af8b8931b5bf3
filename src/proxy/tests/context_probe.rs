//! Drives `Context::best_response` directly: `Some(code)` a received final, `None` a
//! timeout.

use super::super::context::{Context, Outcome};
use super::*;

pub(super) fn best(outcomes: &[Option<u16>]) -> u16 {
    let original = msg(OPTIONS);
    let mut ctx = Context::new(udp_in(), original.clone(), None, None, false);
    for o in outcomes {
        ctx.outcomes.push(match o {
            Some(code) => Outcome::Response(Box::new(reply(&original, *code, Some("t"), ""))),
            None => Outcome::Timeout,
        });
    }
    let (m, _) = ctx.best_response();
    m.unwrap().status_code().unwrap()
}
