//! Money without floats: amounts in integer nano-dollars, prices in integer pico-dollars per unit.
//!
//! Catalog prices go down to fractions of a cent per million tokens (e.g. $0.01875/M = 18,750 pico-dollars
//! per token), so prices need twelve decimals of a dollar; balances need range, so amounts use nine
//! (an `i64` of nano-dollars holds ±$9.2 billion). A cost is summed in pico-dollars as `i128` and rounded
//! half up to nano-dollars once, at the end. Floats appear only at the JSON edge, where the wire format
//! demands USD as numbers.

use std::fmt;

const NANOS_PER_USD: i64 = 1_000_000_000;
const PICOS_PER_NANO: i128 = 1_000;

/// An amount of USD in nano-dollars (1e-9 USD). Negative amounts are refunds or debts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_nanos(nanos: i64) -> Money {
        Money(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Rounds an exact pico-dollar sum half up to nano-dollars, saturating at the `i64` range.
    pub fn from_picos(picos: i128) -> Money {
        let rounded = if picos >= 0 {
            (picos + PICOS_PER_NANO / 2) / PICOS_PER_NANO
        } else {
            (picos - PICOS_PER_NANO / 2) / PICOS_PER_NANO
        };
        Money(rounded.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// Parses a decimal USD amount such as `"10"`, `"0.25"` or `"1e-3"` exactly (rounded to nano-dollars).
    pub fn parse_usd(text: &str) -> Result<Money, DecimalError> {
        parse_scaled(text, 9).map(Money)
    }

    /// USD as a JSON number, for the wire only.
    pub fn as_usd_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Money {
    /// Shortest exact decimal, e.g. `12.5` or `0.000001234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled(self.0 as i128, 9))
    }
}

/// A price in pico-dollars (1e-12 USD) per unit: per token, per request, per image or per search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

impl Price {
    pub const ZERO: Price = Price(0);

    pub const fn from_picos(picos: i64) -> Price {
        Price(picos)
    }

    pub const fn picos(self) -> i64 {
        self.0
    }

    /// Parses OpenRouter's decimal price strings (USD per unit), e.g. `"0.000000075"`.
    pub fn parse_usd(text: &str) -> Result<Price, DecimalError> {
        let picos = parse_scaled(text, 12)?;
        if picos < 0 {
            return Err(DecimalError::Negative(text.to_owned()));
        }
        Ok(Price(picos))
    }

    /// Parses a price given in USD per million units (the unit of `max_price` and of most price lists).
    pub fn parse_usd_per_million(text: &str) -> Result<Price, DecimalError> {
        let picos = parse_scaled(text, 6)?;
        if picos < 0 {
            return Err(DecimalError::Negative(text.to_owned()));
        }
        Ok(Price(picos))
    }

    /// The cost of `units` at this price, in pico-dollars.
    pub fn times(self, units: u64) -> i128 {
        self.0 as i128 * units as i128
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// This price raised (or, if negative, lowered) by `bps` basis points, rounded half up;
    /// never below zero.
    pub fn with_margin_bps(self, bps: i64) -> Price {
        let scaled = (self.0 as i128 * (10_000 + bps as i128) * 2 + 10_000) / 20_000;
        Price(scaled.clamp(0, i64::MAX as i128) as i64)
    }
}

impl fmt::Display for Price {
    /// The wire form: a decimal string of USD per unit, `"0"` when free.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled(self.0 as i128, 12))
    }
}

/// A decimal string that could not be read as money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    #[error("`{0}` is out of range")]
    Range(String),
    #[error("`{0}` is negative; prices cannot be")]
    Negative(String),
}

/// Parses a decimal (optional sign, digits, optional fraction, optional exponent) into an integer
/// scaled by `10^scale`, rounding half up the digits beyond the scale.
fn parse_scaled(text: &str, scale: i32) -> Result<i64, DecimalError> {
    let syntax = || DecimalError::Syntax(text.to_owned());
    let range = || DecimalError::Range(text.to_owned());
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i32>().map_err(|_| syntax())?),
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(syntax());
    }
    // value = digits * 10^(exponent - frac_len); scaled = digits * 10^(exponent - frac_len + scale).
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let shift = exponent
        .checked_sub(frac_part.len() as i32)
        .and_then(|v| v.checked_add(scale))
        .ok_or_else(range)?;
    if digits.is_empty() {
        return Ok(0);
    }
    let mut value: i128;
    if shift >= 0 {
        if digits.len() as i32 + shift > 19 {
            return Err(range());
        }
        value = digits.parse::<i128>().map_err(|_| range())?;
        value = value
            .checked_mul(10i128.pow(shift as u32))
            .ok_or_else(range)?;
    } else {
        let drop = (-shift) as usize;
        // Left-pad so that the cut always has at least one digit: its first digit decides rounding.
        let padded = format!("{digits:0>drop$}");
        let (kept, cut) = padded.split_at(padded.len() - drop);
        if kept.len() > 19 {
            return Err(range());
        }
        value = if kept.is_empty() {
            0
        } else {
            kept.parse::<i128>().map_err(|_| range())?
        };
        if cut.as_bytes()[0] >= b'5' {
            value += 1;
        }
    }
    if value > i64::MAX as i128 {
        return Err(range());
    }
    Ok(if negative {
        -(value as i64)
    } else {
        value as i64
    })
}

/// Formats an integer scaled by `10^scale` as the shortest exact decimal.
fn format_scaled(value: i128, scale: u32) -> String {
    let unit = 10i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let int = abs / unit as u128;
    let frac = abs % unit as u128;
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
