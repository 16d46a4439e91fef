//! Deterministic, Kraken-shaped ids (`OXXXXX-XXXXX-XXXXXX`) for the paper
//! exchange: a bijective mix of a sequence number, so ids look random, are
//! unique, and are identical across runs with the same inputs and salt.
//!
//! The salt separates runs: a backtest uses 0 (same input, same ids), a live
//! paper trader salts with its start time, so a restarted paper trader never
//! reuses the ids of the previous run against the same ledger.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: a bijection on u64.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn encode(prefix: char, value: u64) -> String {
    let mut out = String::with_capacity(19);
    out.push(prefix);
    // 16 base-32 digits hold 80 bits, so every u64 is distinct.
    let v = u128::from(value);
    for i in 0..16u32 {
        if i == 5 || i == 10 {
            out.push('-');
        }
        let digit = ((v >> (5 * (15 - i))) & 31) as usize;
        out.push(char::from(ALPHABET[digit]));
    }
    out
}

/// The order id for the `seq`-th order of a paper book.
#[must_use]
pub fn order_txid(seq: u64) -> String {
    salted_order_txid(0, seq)
}

/// The trade id for the `seq`-th execution of a paper book.
#[must_use]
pub fn trade_txid(seq: u64) -> String {
    salted_trade_txid(0, seq)
}

/// [`order_txid`] of a run salted with `salt` (0 gives the unsalted ids);
/// unique within a run for any salt.
#[must_use]
pub fn salted_order_txid(salt: u64, seq: u64) -> String {
    encode('O', mix(seq ^ mix(salt)))
}

/// [`trade_txid`] of a run salted with `salt`.
#[must_use]
pub fn salted_trade_txid(salt: u64, seq: u64) -> String {
    encode('T', mix(seq ^ mix(salt) ^ 0x5eed_5eed_5eed_5eed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_kraken_shaped_unique_and_stable() {
        let a = order_txid(0);
        assert_eq!(a.len(), 19);
        assert_eq!(a.as_bytes()[6], b'-');
        assert_eq!(a.as_bytes()[12], b'-');
        assert_eq!(a, order_txid(0));
        let set: HashSet<_> = (0..10_000).map(order_txid).collect();
        assert_eq!(set.len(), 10_000);
        assert!(trade_txid(1).starts_with('T'));
    }

    #[test]
    fn salt_zero_keeps_ids_and_other_salts_separate_runs() {
        assert_eq!(salted_order_txid(0, 7), order_txid(7));
        assert_eq!(salted_trade_txid(0, 7), trade_txid(7));
        let run_a: HashSet<_> = (0..1_000).map(|i| salted_order_txid(1, i)).collect();
        let run_b: HashSet<_> = (0..1_000).map(|i| salted_order_txid(2, i)).collect();
        assert_eq!(run_a.len(), 1_000);
        assert!(run_a.is_disjoint(&run_b));
    }
}
