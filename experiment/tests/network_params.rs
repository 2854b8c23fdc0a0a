//! Property tests of the network fault newtypes: CIDRs, port ranges, rates, sizes and
//! percentages never panic on any text, and what they print parses back to the same value.
use faultline_experiment::faults::{Bytes, Cidr, Percent, PortRange, Rate};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_parsed_or_refused_without_panic(text in "\\PC{0,40}") {
        let _ = text.parse::<Cidr>();
        let _ = text.parse::<PortRange>();
        let _ = text.parse::<Rate>();
        let _ = text.parse::<Bytes>();
        let _ = text.parse::<Percent>();
    }

    #[test]
    fn cidrs_round_trip_and_contain_their_addresses(a in any::<u32>(), b in any::<u128>(), p4 in 0u8..=32, p6 in 0u8..=128) {
        for (text, addr) in [
            (format!("{}/{p4}", Ipv4Addr::from(a)), format!("{}", Ipv4Addr::from(a))),
            (format!("{}/{p6}", Ipv6Addr::from(b)), format!("{}", Ipv6Addr::from(b))),
        ] {
            let c: Cidr = text.parse().unwrap();
            prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
            let host: Cidr = addr.parse().unwrap();
            prop_assert!(c.contains(&host), "{} should contain {}", c, host);
            prop_assert!(Cidr::any(c.is_v4()).contains(&c));
        }
    }

    #[test]
    fn port_ranges_round_trip(lo in 1u16.., len in 0u16..1000) {
        let hi = lo.saturating_add(len);
        let r: PortRange = format!("{lo}-{hi}").parse().unwrap();
        prop_assert_eq!((r.lo, r.hi), (lo, hi));
        prop_assert_eq!(r.to_string().parse::<PortRange>().unwrap(), r);
        prop_assert!(PortRange::ALL.contains(&r));
    }

    #[test]
    fn rates_and_sizes_round_trip(bits in 8u64..1_000_000_000_000, bytes in 1u64..(1 << 30)) {
        let r: Rate = format!("{bits}bit").parse().unwrap();
        prop_assert_eq!(r.0, bits);
        prop_assert_eq!(r.to_string().parse::<Rate>().unwrap(), r);
        let b: Bytes = format!("{bytes}b").parse().unwrap();
        prop_assert_eq!(b.to_string().parse::<Bytes>().unwrap(), b);
    }
}
