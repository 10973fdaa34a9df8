//! The `/proc/net/{tcp,tcp6,udp,udp6}` socket tables as the firewall collector
//! parses them (`vigil_rules::checks::firewall::proc_net`). Input: the first byte picks the table
//! (`% 4`: tcp, tcp6, udp, udp6), the rest is its text.
//! Properties beyond no panic / no hang: every socket returned carries the
//! table's protocol and family, an address that parses as one of that family
//! (IPv4-mapped IPv6 as `::ffff:a.b.c.d`), and the parse is deterministic;
//! `parse_addr` on the address/port it printed reads back to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::select;
use vigil_rules::checks::firewall::proc_net;

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = select(data, 4) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let (proto, v6) = match which {
        0 => ("tcp", false),
        1 => ("tcp", true),
        2 => ("udp", false),
        _ => ("udp", true),
    };
    let first = proc_net::parse_proc_net(text, proto, v6);
    assert_eq!(first, proc_net::parse_proc_net(text, proto, v6));
    let Ok(sockets) = first else { return };
    for (s, _inode) in sockets {
        assert_eq!(s.proto, proto);
        assert_eq!(s.v6, v6);
        assert!(s.pid.is_none() && s.process.is_none());
        if v6 {
            let ip: std::net::Ipv6Addr = match s.address.strip_prefix("::ffff:") {
                Some(v4) if v4.contains('.') => {
                    let v4: std::net::Ipv4Addr = v4.parse().expect("mapped IPv4");
                    v4.to_ipv6_mapped()
                }
                _ => s.address.parse().expect("IPv6 address"),
            };
            // Back to the kernel's form: four host-order (little-endian) words.
            let hex: String = ip
                .octets()
                .chunks(4)
                .map(|c| {
                    format!(
                        "{:08X}",
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]).swap_bytes()
                    )
                })
                .collect();
            let again = proc_net::parse_addr(&format!("{hex}:{:04X}", s.port), true);
            assert_eq!(again, Some((s.address.clone(), s.port)));
        } else {
            let ip: std::net::Ipv4Addr = s.address.parse().expect("IPv4 address");
            let hex = format!("{:08X}", u32::from(ip).swap_bytes());
            let again = proc_net::parse_addr(&format!("{hex}:{:04X}", s.port), false);
            assert_eq!(again, Some((s.address.clone(), s.port)));
        }
    }
});
