//! Kraken's `API-Sign`: base64(HMAC-SHA512(base64-decoded secret,
//! uri_path || SHA256(nonce || body))). Used by the client to sign and by
//! the simulator to verify, so both sides share one definition.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

/// The API secret is not valid base64 (Kraken issues it base64-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("API secret is not valid base64")]
pub struct BadSecret;

/// Decodes a base64 API secret as Kraken issues it.
pub fn decode_secret(secret_b64: &str) -> Result<Vec<u8>, BadSecret> {
    let bytes = STANDARD.decode(secret_b64.trim()).map_err(|_| BadSecret)?;
    if bytes.is_empty() {
        return Err(BadSecret);
    }
    Ok(bytes)
}

/// Computes `API-Sign` for a private request.
///
/// `body` is the exact url-encoded POST body that will be sent (it must
/// contain the same `nonce`).
#[must_use]
pub fn sign(secret: &[u8], uri_path: &str, nonce: &str, body: &str) -> String {
    let mut sha = Sha256::new();
    sha.update(nonce.as_bytes());
    sha.update(body.as_bytes());
    let digest = sha.finalize();
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(uri_path.as_bytes());
    mac.update(&digest);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a received signature in constant time.
#[must_use]
pub fn verify(secret: &[u8], uri_path: &str, nonce: &str, body: &str, api_sign: &str) -> bool {
    let Ok(claimed) = STANDARD.decode(api_sign.trim()) else {
        return false;
    };
    let mut sha = Sha256::new();
    sha.update(nonce.as_bytes());
    sha.update(body.as_bytes());
    let digest = sha.finalize();
    let Ok(mut mac) = <Hmac<Sha512> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(uri_path.as_bytes());
    mac.update(&digest);
    mac.verify_slice(&claimed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kraken's published example from its Spot REST authentication guide.
    #[test]
    fn reproduces_krakens_published_example() {
        let secret = decode_secret(
            "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
        )
        .unwrap();
        let nonce = "1616492376594";
        let body =
            "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
        let expected = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==";
        assert_eq!(sign(&secret, "/0/private/AddOrder", nonce, body), expected);
        assert!(verify(
            &secret,
            "/0/private/AddOrder",
            nonce,
            body,
            expected
        ));
        assert!(!verify(
            &secret,
            "/0/private/Balance",
            nonce,
            body,
            expected
        ));
    }

    #[test]
    fn rejects_bad_secrets() {
        assert_eq!(decode_secret("not base64!"), Err(BadSecret));
        assert_eq!(decode_secret(""), Err(BadSecret));
    }
}
