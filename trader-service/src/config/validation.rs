//! What makes a configuration value unusable ([`ConfigError`]) and how a
//! merely unsafe one is clamped ([`Clamp`]); see the module docs of
//! [`crate::config`] for why the two are told apart.

use rust_decimal::Decimal;
use thiserror::Error;

use super::ConfigWarning;

/// A configuration value that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A value is outside the range that makes sense (zero slots, negative sizes).
    #[error("{name}: {reason} (got {value})")]
    OutOfRange {
        /// Environment variable name of the setting.
        name: &'static str,
        /// The offending value as given.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A URL setting does not parse as an http(s) URL.
    #[error("{name}: not an http(s) URL: {value:?}")]
    BadUrl {
        /// Environment variable name of the setting.
        name: &'static str,
        /// The offending value as given.
        value: String,
    },
}

/// Collects clamp warnings while validating.
#[derive(Default)]
pub(super) struct Clamp {
    pub(super) warnings: Vec<ConfigWarning>,
}

impl Clamp {
    /// `value`, or `min` with a warning when it is below the safe minimum.
    pub(super) fn at_least<T: PartialOrd + ToString>(
        &mut self,
        name: &'static str,
        value: T,
        min: T,
    ) -> T {
        if value < min {
            self.warnings.push(ConfigWarning {
                field: name,
                given: value.to_string(),
                used: min.to_string(),
                rule: "below the safe minimum",
            });
            min
        } else {
            value
        }
    }

    /// `value`, or `max` with a warning when it is above the safe maximum.
    pub(super) fn at_most<T: PartialOrd + ToString>(
        &mut self,
        name: &'static str,
        value: T,
        max: T,
    ) -> T {
        if value > max {
            self.warnings.push(ConfigWarning {
                field: name,
                given: value.to_string(),
                used: max.to_string(),
                rule: "above the safe maximum",
            });
            max
        } else {
            value
        }
    }

    /// `value`, or `default` with a warning when it is not above zero.
    pub(super) fn positive_dec(
        &mut self,
        name: &'static str,
        value: Decimal,
        default: Decimal,
    ) -> Decimal {
        if value <= Decimal::ZERO {
            self.warnings.push(ConfigWarning {
                field: name,
                given: value.to_string(),
                used: default.to_string(),
                rule: "must be > 0; default used",
            });
            default
        } else {
            value
        }
    }
}

/// `value` if it is above zero; anything else cannot be traded.
pub(super) fn positive(name: &'static str, value: Decimal) -> Result<Decimal, ConfigError> {
    if value <= Decimal::ZERO {
        return Err(ConfigError::OutOfRange {
            name,
            value: value.to_string(),
            reason: "must be greater than zero",
        });
    }
    Ok(value)
}

/// Checks that a URL setting is an absolute http(s) URL with a host.
pub fn check_http_url(name: &'static str, value: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadUrl {
        name,
        value: value.to_string(),
    };
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_http_url("LEDGER_URL", "http://127.0.0.1:50051").is_ok());
        assert!(check_http_url("KRAKEN_API_URL", "https://api.kraken.com").is_ok());
        for bad in [
            "",
            "127.0.0.1:50051",
            "ftp://x",
            "http://",
            "http://:80",
            "http://a b",
        ] {
            assert!(check_http_url("LEDGER_URL", bad).is_err(), "{bad}");
        }
    }
}
