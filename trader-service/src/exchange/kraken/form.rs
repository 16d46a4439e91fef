//! Request bodies for private calls: the url-encoded form (built once, in
//! order, because the signature covers its exact bytes) and the AddOrder
//! parameters.

use crate::exchange::types::{OrderKind, OrderRequest};

/// Url-encodes a form in the given order (the signature covers the exact
/// bytes, so the body is built once and sent as is).
pub fn encode_form(form: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in form.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&urlencode(k));
        out.push('=');
        out.push_str(&urlencode(v));
    }
    out
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// AddOrder parameters for a request: every order carries its `userref`
/// and `cl_ord_id`, so an ambiguous placement can be looked up.
pub fn add_order_params(req: &OrderRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("pair", req.pair.clone()),
        ("type", req.side.as_str().to_owned()),
        ("volume", req.volume.normalize().to_string()),
        ("userref", req.userref.to_string()),
        ("cl_ord_id", req.client_order_id.clone()),
    ];
    match req.kind {
        OrderKind::Limit { price, post_only } => {
            p.push(("ordertype", "limit".into()));
            p.push(("price", price.normalize().to_string()));
            if post_only {
                p.push(("oflags", "post".into()));
            }
        }
        OrderKind::Market => p.push(("ordertype", "market".into())),
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::Side;
    use rust_decimal_macros::dec;
    use std::collections::HashMap;

    #[test]
    fn add_order_params_carry_userref_cl_ord_id_and_post_flag() {
        let req = OrderRequest {
            pair: "XDGUSD".into(),
            side: Side::Buy,
            kind: OrderKind::Limit {
                price: dec!(0.0912300),
                post_only: true,
            },
            volume: dec!(120.50000000),
            userref: 42,
            client_order_id: "slot-42-1".into(),
        };
        let p: HashMap<_, _> = add_order_params(&req).into_iter().collect();
        assert_eq!(p["price"], "0.09123");
        assert_eq!(p["volume"], "120.5");
        assert_eq!(p["oflags"], "post");
        assert_eq!(p["userref"], "42");
        assert_eq!(p["cl_ord_id"], "slot-42-1");
        assert_eq!(p["ordertype"], "limit");
    }

    #[test]
    fn form_encoding_matches_krakens_signed_example() {
        let body = encode_form(&[("nonce", "1"), ("txid", "A,B"), ("x", "a b")]);
        assert_eq!(body, "nonce=1&txid=A%2CB&x=a%20b");
    }
}
