//! Fault injection for the simulator: the failure modes that make order
//! placement ambiguous in production, the ones that make a private call
//! fail or lag, and stale or partial order reports, queued per method and
//! consumed one request at a time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A failure the simulator can produce on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Reply `EService:Unavailable` without processing.
    ServiceUnavailable,
    /// Reply HTTP 502 with an HTML body without processing.
    Http5xxHtml,
    /// Hold the request past any sane client timeout, without processing.
    Timeout,
    /// Process the request, then never deliver the response
    /// ("order accepted but response lost").
    LostResponse,
    /// Reply `EService:Busy` at once but process the request later, after
    /// the client's first lookup: the stale-lookup case. The late request
    /// meets the same rules as any other, so if the client has meanwhile
    /// placed a copy with the same `cl_ord_id` and it is still open, the
    /// original is refused (`EOrder:Duplicate order`) and never appears.
    DelayedAccept,
    /// Reply `EOrder:Rate limit exceeded` without processing, as Kraken does
    /// when its trading counter is full, whatever the simulator's own
    /// counters say.
    RateLimited,
    /// Reply `EAPI:Invalid nonce` without processing, as Kraken does when a
    /// nonce arrives out of order (another process on the key, a clock
    /// that stepped back).
    InvalidNonce,
    /// Answer from an older view, as a lagging replica serves it: the
    /// reply the simulator gave last time to the same call (method and
    /// parameters), or for `QueryOrders` each order as last reported.
    /// Stays queued until there is an older view to show.
    StaleStatus,
    /// Process the request at once, but reply only after `ms`
    /// milliseconds: a slow exchange that stretches the client's loop.
    SlowReply {
        /// Milliseconds between processing and the reply.
        ms: u64,
    },
    /// Not a call fault: the next resting execution that may be split
    /// executes only half of what remains (rounded down to the lot; both
    /// parts at least the pair minimum), the rest staying on the book. Its
    /// rule names the method [`FILL_METHOD`].
    PartialFill,
}

/// The method a [`Fault::PartialFill`] rule names: executions, not a call.
pub const FILL_METHOD: &str = "fill";

/// The method of a rule that matches every private call.
pub const ANY_METHOD: &str = "*";

/// A request to inject `fault` into the next `count` calls of `method`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Private method name, e.g. `AddOrder`; [`ANY_METHOD`] for whichever
    /// private call comes next; [`FILL_METHOD`] for a partial fill.
    pub method: String,
    /// What to do.
    pub fault: Fault,
    /// How many consecutive matching calls to affect.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Pending faults, consumed in order.
#[derive(Debug, Default)]
pub struct FaultQueue {
    rules: VecDeque<FaultRule>,
}

impl FaultQueue {
    /// Queues a rule.
    pub fn push(&mut self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules.push_back(rule);
        }
    }

    /// The fault for this call of `method`, if one is queued for it (by
    /// name or for any method, whichever was queued first).
    pub fn take(&mut self, method: &str) -> Option<Fault> {
        let pos = self
            .rules
            .iter()
            .position(|r| r.method == method || r.method == ANY_METHOD)?;
        let rule = &mut self.rules[pos];
        let fault = rule.fault;
        rule.count -= 1;
        if rule.count == 0 {
            self.rules.remove(pos);
        }
        Some(fault)
    }

    /// Returns a fault taken for `method` that could not take effect yet
    /// (a stale reply before any reply exists): first in line again.
    pub fn put_back(&mut self, method: &str, fault: Fault) {
        match self.rules.front_mut() {
            Some(r) if r.method == method && r.fault == fault => r.count += 1,
            _ => self.rules.push_front(FaultRule {
                method: method.to_owned(),
                fault,
                count: 1,
            }),
        }
    }

    /// Number of faults still pending.
    #[must_use]
    pub fn pending(&self) -> u32 {
        self.rules.iter().map(|r| r.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_per_method_in_order() {
        let mut q = FaultQueue::default();
        q.push(FaultRule {
            method: "AddOrder".into(),
            fault: Fault::Timeout,
            count: 2,
        });
        q.push(FaultRule {
            method: "Balance".into(),
            fault: Fault::Http5xxHtml,
            count: 1,
        });
        assert_eq!(q.take("OpenOrders"), None);
        assert_eq!(q.take("Balance"), Some(Fault::Http5xxHtml));
        assert_eq!(q.take("AddOrder"), Some(Fault::Timeout));
        assert_eq!(q.pending(), 1);
        assert_eq!(q.take("AddOrder"), Some(Fault::Timeout));
        assert_eq!(q.take("AddOrder"), None);
        let r: FaultRule =
            serde_json::from_str(r#"{"method":"AddOrder","fault":"lost_response"}"#).unwrap();
        assert_eq!(r.count, 1);
    }

    #[test]
    fn a_rule_for_any_method_hits_the_next_call_whatever_it_is() {
        let mut q = FaultQueue::default();
        q.push(FaultRule {
            method: ANY_METHOD.into(),
            fault: Fault::InvalidNonce,
            count: 2,
        });
        q.push(FaultRule {
            method: "AddOrder".into(),
            fault: Fault::RateLimited,
            count: 1,
        });
        assert_eq!(q.take("Balance"), Some(Fault::InvalidNonce));
        assert_eq!(q.take("AddOrder"), Some(Fault::InvalidNonce));
        assert_eq!(q.take("AddOrder"), Some(Fault::RateLimited));
        assert_eq!(q.take("OpenOrders"), None);
    }

    #[test]
    fn a_put_back_fault_is_next_in_line() {
        let mut q = FaultQueue::default();
        q.push(FaultRule {
            method: "QueryOrders".into(),
            fault: Fault::StaleStatus,
            count: 1,
        });
        let f = q.take("QueryOrders").unwrap();
        assert_eq!(q.pending(), 0);
        q.put_back("QueryOrders", f);
        q.put_back("QueryOrders", f);
        assert_eq!(q.pending(), 2);
        assert_eq!(q.take("QueryOrders"), Some(Fault::StaleStatus));
    }

    #[test]
    fn new_faults_read_from_their_wire_names() {
        let parse = |s: &str| serde_json::from_str::<FaultRule>(s).unwrap().fault;
        assert_eq!(
            parse(r#"{"method":"*","fault":"invalid_nonce"}"#),
            Fault::InvalidNonce
        );
        assert_eq!(
            parse(r#"{"method":"OpenOrders","fault":"stale_status"}"#),
            Fault::StaleStatus
        );
        assert_eq!(
            parse(r#"{"method":"*","fault":{"slow_reply":{"ms":6000}}}"#),
            Fault::SlowReply { ms: 6000 }
        );
        assert_eq!(
            parse(r#"{"method":"fill","fault":"partial_fill"}"#),
            Fault::PartialFill
        );
    }
}
