//! Tests of exact decimal money.

use super::*;

#[test]
fn parses_openrouter_price_strings_exactly() {
    assert_eq!(Price::parse_usd("0.000000075").unwrap().picos(), 75_000);
    assert_eq!(Price::parse_usd("0.00001875").unwrap().picos(), 18_750_000);
    assert_eq!(Price::parse_usd("0").unwrap(), Price::ZERO);
    assert_eq!(Price::parse_usd("1.5e-7").unwrap().picos(), 150_000);
    assert_eq!(Price::parse_usd("0.0000000000006").unwrap().picos(), 1);
    assert_eq!(Price::parse_usd("0.00000000000006").unwrap().picos(), 0);
    assert_eq!(
        Price::parse_usd_per_million("2.5").unwrap().picos(),
        2_500_000
    );
    assert!(Price::parse_usd("-1").is_err());
    assert!(Price::parse_usd("abc").is_err());
    assert!(Price::parse_usd("").is_err());
    assert!(Price::parse_usd("1e400").is_err());
}

#[test]
fn prints_prices_as_shortest_decimal() {
    assert_eq!(Price::from_picos(75_000).to_string(), "0.000000075");
    assert_eq!(Price::ZERO.to_string(), "0");
    assert_eq!(Price::from_picos(2_000_000_000_000).to_string(), "2");
}

#[test]
fn money_rounds_half_up_once() {
    assert_eq!(Money::from_picos(1_499).nanos(), 1);
    assert_eq!(Money::from_picos(1_500).nanos(), 2);
    assert_eq!(Money::from_picos(-1_500).nanos(), -2);
    assert_eq!(Money::parse_usd("10.5").unwrap().nanos(), 10_500_000_000);
    assert_eq!(Money::parse_usd("0.0000000004").unwrap().nanos(), 0);
    assert_eq!(Money::from_nanos(1_234).to_string(), "0.000001234");
    assert_eq!(Money::from_nanos(-2_500_000_000).to_string(), "-2.5");
}

#[test]
fn round_trips_through_display() {
    for picos in [
        0i64,
        1,
        75_000,
        18_750_000,
        999_999_999_999,
        15_000_000_000_000,
    ] {
        let price = Price::from_picos(picos);
        assert_eq!(Price::parse_usd(&price.to_string()).unwrap(), price);
    }
}

#[test]
fn margins_in_basis_points() {
    let p = Price::from_picos(150_000);
    assert_eq!(p.with_margin_bps(1_000).picos(), 165_000);
    assert_eq!(p.with_margin_bps(-500).picos(), 142_500);
    assert_eq!(Price::from_picos(1).with_margin_bps(5_000).picos(), 2);
    assert_eq!(p.with_margin_bps(-20_000), Price::ZERO);
}
