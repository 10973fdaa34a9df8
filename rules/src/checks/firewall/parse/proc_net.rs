//! The socket tables of `/proc/net/{tcp,tcp6,udp,udp6}`, parsed purely:
//! text in, listening sockets with their inodes out. The firewall collector
//! reads the files and resolves owners; the fuzz crate calls this as it is
//! (`fuzz/fuzz_targets/proc_net.rs`).

use crate::checks::firewall::facts::Socket;

/// A socket table line that does not read; `line` is 1-based, counting the
/// header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcNetError {
    #[error("line {line}: too few fields")]
    TooFewFields { line: usize },
    #[error("line {line}: bad address `{address}`")]
    BadAddress { line: usize, address: String },
}

/// The listening sockets of one table (`proto` is `"tcp"` or `"udp"`):
/// TCP in state `0A` (LISTEN), UDP in `07` (CLOSE, i.e. bound) with no
/// remote port. Each comes with its socket inode (0 when unreadable), owners
/// are left empty. The first line is the header. Errors name the line
/// (1-based, counting the header): `line N: ...`.
pub fn parse_proc_net(
    text: &str,
    proto: &str,
    v6: bool,
) -> Result<Vec<(Socket, u64)>, ProcNetError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state), Some(inode)) =
            (f.get(1), f.get(2), f.get(3), f.get(9))
        else {
            return Err(ProcNetError::TooFewFields { line: i + 1 });
        };
        let listening = match proto {
            "tcp" => *state == "0A",
            _ => *state == "07" && remote.ends_with(":0000"),
        };
        if !listening {
            continue;
        }
        let (address, port) = parse_addr(local, v6).ok_or_else(|| ProcNetError::BadAddress {
            line: i + 1,
            address: (*local).to_owned(),
        })?;
        let inode = inode.parse::<u64>().unwrap_or(0);
        out.push((
            Socket {
                proto: proto.into(),
                v6,
                address,
                port,
                process: None,
                pid: None,
            },
            inode,
        ));
    }
    Ok(out)
}

/// `0100007F:1F90` → (`127.0.0.1`, 8080); IPv6 as four host-order words.
pub fn parse_addr(s: &str, v6: bool) -> Option<(String, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if !v6 {
        let n = u32::from_str_radix(addr, 16).ok()?;
        return Some((std::net::Ipv4Addr::from(n.swap_bytes()).to_string(), port));
    }
    if addr.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (w, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(addr.get(w * 8..w * 8 + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
    }
    let ip = std::net::Ipv6Addr::from(bytes);
    let text = match ip.to_ipv4_mapped() {
        Some(v4) => format!("::ffff:{v4}"),
        None => ip.to_string(),
    };
    Some((text, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18342 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 20117 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0202000A:D4C2 01 00000000:00000000 02:0009A2B1 00000000     0        0 31337 2 0000000000000000 20 4 29 10 -1
";

    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 19001 2 0000000000000000 0
  124: 00000000000000000000000001000000:0035 00000000000000000000000001000000:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 19002 2 0000000000000000 0
";

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("0100007F:1F90", false),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            parse_addr("00000000:0016", false),
            Some(("0.0.0.0".into(), 22))
        );
        assert_eq!(
            parse_addr("00000000000000000000000000000000:0050", true),
            Some(("::".into(), 80))
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050", true),
            Some(("::1".into(), 80))
        );
        assert_eq!(
            parse_addr("0000000000000000FFFF00000100007F:0050", true),
            Some(("::ffff:127.0.0.1".into(), 80))
        );
    }

    #[test]
    fn bad_addresses_are_none() {
        for (s, v6) in [
            ("", false),
            ("0100007F", false),
            ("0100007F:", false),
            ("0100007F:10000", false),
            ("1000000000:0016", false),
            ("0000:0016", true),
            // 32 bytes, but a two-byte character straddles the first word's end
            ("0000000é00000000000000000000000:0016", true),
            ("0000000000000000000000000000000g:0016", true),
        ] {
            assert_eq!(parse_addr(s, v6), None, "{s:?}");
        }
    }

    #[test]
    fn tcp_listeners_only_with_inodes() {
        let got = parse_proc_net(TCP, "tcp", false).unwrap();
        let seen: Vec<_> = got
            .iter()
            .map(|(s, i)| (s.address.as_str(), s.port, *i))
            .collect();
        assert_eq!(seen, [("0.0.0.0", 22, 18342), ("127.0.0.1", 5432, 20117)]);
        assert!(got
            .iter()
            .all(|(s, _)| s.proto == "tcp" && !s.v6 && s.pid.is_none()));
    }

    #[test]
    fn udp_bound_sockets_without_a_peer() {
        let got = parse_proc_net(UDP6, "udp", true).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.address, "::");
        assert_eq!(got[0].0.port, 5353);
        assert_eq!(got[0].1, 19001);
    }

    #[test]
    fn header_only_and_empty_tables_have_no_sockets() {
        assert_eq!(parse_proc_net("", "tcp", false).unwrap().len(), 0);
        let header = TCP.lines().next().unwrap();
        assert_eq!(parse_proc_net(header, "udp", true).unwrap().len(), 0);
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let short = format!(
            "{}\n   0: 00000000:0016 00000000:0000 0A\n",
            TCP.lines().next().unwrap()
        );
        assert_eq!(
            parse_proc_net(&short, "tcp", false)
                .unwrap_err()
                .to_string(),
            "line 2: too few fields"
        );
        let bad = TCP.replace("0100007F:1538", "0100007F:XYZ!");
        assert_eq!(
            parse_proc_net(&bad, "tcp", false).unwrap_err().to_string(),
            "line 3: bad address `0100007F:XYZ!`"
        );
        // An unreadable inode is 0, not an error.
        let inode = TCP.replace(" 18342 ", " -1 ");
        assert_eq!(parse_proc_net(&inode, "tcp", false).unwrap()[0].1, 0);
    }
}
