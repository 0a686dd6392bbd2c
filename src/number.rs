//! Numbers as people read them: metric values at five significant digits.
//!
//! Metrics arrive as `f64`s whose full precision (`6.2092542530000046`) is noise in a table,
//! an alert or a chart label, and makes columns ragged. Every place that prints a value for
//! people — the CLI's tables, the daemon's alert messages, the cockpit's charts, lists and
//! alerts — goes through [`Short`] so the same value reads the same everywhere. JSON output
//! keeps full precision: it is for programs.

use std::fmt;

/// Significant digits shown.
const DIGITS: i32 = 5;

/// Integers below this magnitude print exactly (steps, counts): rounding a step number to five
/// digits would name a step that does not exist.
const EXACT_INTEGERS: f64 = 1e9;

/// A value shown to five significant digits: plain (`6.2093`, `0.00031`, `12346`) between
/// 1e-4 and 1e5, else scientific (`1.2346e-5`, `3e12`), trailing zeros dropped; integers
/// below a billion exactly; `nan`, `inf` and `-inf` plainly. Honours width and alignment
/// (`{:>8}`), so tables can pad it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Short(pub f64);

/// [`Short`] as a `String`, for places that build cells or labels.
pub fn short(value: f64) -> String {
    Short(value).to_string()
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let text = if v.is_nan() {
            "nan".to_string()
        } else if v.is_infinite() {
            (if v > 0.0 { "inf" } else { "-inf" }).to_string()
        } else if v == 0.0 {
            // Also turns -0 into 0.
            "0".to_string()
        } else if v.fract() == 0.0 && v.abs() < EXACT_INTEGERS {
            format!("{v:.0}")
        } else {
            let text = format!("{v:.prec$e}", prec = (DIGITS - 1) as usize);
            // Decide on the rounded value, so 99999.9 reads 1e5 rather than 100000.
            let rounded: f64 = text.parse().unwrap_or(v);
            if (1e-4..1e5).contains(&rounded.abs()) {
                // Digits after the point that leave DIGITS significant ones.
                let magnitude = rounded.abs().log10().floor() as i32;
                let decimals = usize::try_from(DIGITS - 1 - magnitude).unwrap_or(0);
                return f.pad(&trim_zeros(format!("{rounded:.decimals$}")));
            }
            match text.split_once('e') {
                Some((mantissa, exponent)) => {
                    format!("{}e{exponent}", trim_zeros(mantissa.to_string()))
                }
                None => text,
            }
        };
        f.pad(&text)
    }
}

/// `1.2300` → `1.23`, `2.000` → `2`; text without a decimal point is kept.
fn trim_zeros(mut text: String) -> String {
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_five_significant_digits() {
        let cases = [
            (6.2092542530000046, "6.2093"),
            (-6.2092542530000046, "-6.2093"),
            (0.1 + 0.2, "0.3"),
            (3e-4, "0.0003"),
            (0.000123456, "0.00012346"),
            (1.23456e-5, "1.2346e-5"),
            (-1.23456e-5, "-1.2346e-5"),
            (12345.678, "12346"),
            (99999.9, "1e5"),
            (123456.7, "1.2346e5"),
            (9.99996, "10"),
            (2.5e12, "2.5e12"),
            (1e-300, "1e-300"),
        ];
        for (value, shown) in cases {
            assert_eq!(short(value), shown, "{value:?}");
        }
    }

    #[test]
    fn integers_zero_and_non_finite_values_print_plainly() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(-0.0), "0");
        assert_eq!(short(50.0), "50");
        assert_eq!(short(123_456_789.0), "123456789");
        assert_eq!(short(1e9), "1e9");
        assert_eq!(short(f64::NAN), "nan");
        assert_eq!(short(f64::INFINITY), "inf");
        assert_eq!(short(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn padding_applies_to_the_short_form() {
        assert_eq!(format!("[{:>8}]", Short(6.2092542530000046)), "[  6.2093]");
        assert_eq!(format!("[{:<5}]", Short(f64::NAN)), "[nan  ]");
    }
}
