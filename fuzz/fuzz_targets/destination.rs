//! The destination check on any address: never a panic, and an IPv4 address
//! is judged the same when it arrives IPv4-mapped in IPv6.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clauderon_proxy::destination::inward;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: [u8; 16]| {
    let v6 = Ipv6Addr::from(data);
    let _ = inward(IpAddr::V6(v6));
    let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    assert_eq!(inward(IpAddr::V4(v4)), inward(IpAddr::V6(v4.to_ipv6_mapped())), "{v4}");
});
