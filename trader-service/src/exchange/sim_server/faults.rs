//! Fault injection for the simulator: the failure modes that make order
//! placement ambiguous in production, queued per method and consumed one
//! request at a time.

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
}

/// A request to inject `fault` into the next `count` calls of `method`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Private method name, e.g. `AddOrder`.
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

    /// The fault for this call of `method`, if one is queued for it.
    pub fn take(&mut self, method: &str) -> Option<Fault> {
        let pos = self.rules.iter().position(|r| r.method == method)?;
        let rule = &mut self.rules[pos];
        let fault = rule.fault;
        rule.count -= 1;
        if rule.count == 0 {
            self.rules.remove(pos);
        }
        Some(fault)
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
}
