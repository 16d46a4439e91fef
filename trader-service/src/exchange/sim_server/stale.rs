//! What [`super::Fault::StaleStatus`] replays: the replies the simulator
//! gave to order-status calls, and each order as it was last reported, so
//! a stale answer shows the orders as a lagging replica would, as they
//! were a call ago.

use std::collections::HashMap;

use serde_json::Value;

/// Calls whose replies are kept: the ones that report orders.
const STATUS_METHODS: [&str; 4] = ["QueryOrders", "OpenOrders", "ClosedOrders", "TradesHistory"];

/// Bound on either map; once reached it is emptied at once (a stale reply
/// needs only recent ones).
const MAX_KEPT: usize = 4096;

use super::Form;

/// The key of a call: its method and parameters, without the nonce (which
/// differs on every call), in a fixed order.
fn call_key(method: &str, form: &Form) -> String {
    let mut params: Vec<(&String, &String)> = form.iter().filter(|(k, _)| *k != "nonce").collect();
    params.sort();
    let mut key = method.to_owned();
    for (k, v) in params {
        key.push('&');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
}

/// The replies and order reports a stale answer is made of.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// Last reply per call.
    replies: HashMap<String, Value>,
    /// Last report per txid, from `QueryOrders` replies.
    orders: HashMap<String, Value>,
}

impl Kept {
    /// Keeps a reply of an order-status call.
    pub(super) fn record(&mut self, method: &str, form: &Form, reply: &Value) {
        if !STATUS_METHODS.contains(&method) {
            return;
        }
        if self.replies.len() >= MAX_KEPT {
            self.replies.clear();
        }
        self.replies.insert(call_key(method, form), reply.clone());
        if method == "QueryOrders"
            && let Some(orders) = reply.as_object()
        {
            if self.orders.len() >= MAX_KEPT {
                self.orders.clear();
            }
            for (txid, order) in orders {
                self.orders.insert(txid.clone(), order.clone());
            }
        }
    }

    /// The reply given last time to this very call.
    pub(super) fn reply(&self, method: &str, form: &Form) -> Option<Value> {
        self.replies.get(&call_key(method, form)).cloned()
    }

    /// The reports kept for the orders a `QueryOrders` asks for.
    pub(super) fn orders_asked(&self, form: &Form) -> HashMap<String, Value> {
        form.get("txid")
            .map(|t| {
                t.split(',')
                    .filter_map(|id| Some((id.to_owned(), self.orders.get(id)?.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A fresh `QueryOrders` reply with every order reported before replaced
/// by that earlier report; returns it with how many were replaced.
pub(super) fn as_before(fresh: Value, before: &HashMap<String, Value>) -> (Value, usize) {
    let Value::Object(mut orders) = fresh else {
        return (fresh, 0);
    };
    let mut replaced = 0;
    for (txid, order) in &mut orders {
        if let Some(old) = before.get(txid) {
            *order = old.clone();
            replaced += 1;
        }
    }
    (Value::Object(orders), replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::super::form_of as form;

    #[test]
    fn a_reply_is_kept_per_call_whatever_the_nonce() {
        let mut k = Kept::default();
        let first = form(&[("nonce", "1"), ("trades", "true")]);
        k.record("OpenOrders", &first, &json!({"open": {}}));
        k.record("AddOrder", &first, &json!({"txid": ["X"]}));
        let again = form(&[("trades", "true"), ("nonce", "2")]);
        assert_eq!(k.reply("OpenOrders", &again), Some(json!({"open": {}})));
        assert_eq!(k.reply("OpenOrders", &form(&[("nonce", "3")])), None);
        assert_eq!(k.reply("AddOrder", &again), None, "placements are not kept");
    }

    #[test]
    fn a_query_shows_each_order_as_last_reported() {
        let mut k = Kept::default();
        let asked_a = form(&[("nonce", "1"), ("txid", "A")]);
        k.record("QueryOrders", &asked_a, &json!({"A": {"status": "open"}}));
        let asked_ab = form(&[("nonce", "2"), ("txid", "A,B")]);
        let before = k.orders_asked(&asked_ab);
        assert_eq!(before.len(), 1);
        let fresh = json!({"A": {"status": "closed"}, "B": {"status": "open"}});
        let (stale, replaced) = as_before(fresh, &before);
        assert_eq!(replaced, 1);
        assert_eq!(
            stale,
            json!({"A": {"status": "open"}, "B": {"status": "open"}})
        );
    }
}
