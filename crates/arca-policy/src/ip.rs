//! CIDR ranges for `IpAddress` / `NotIpAddress`.

use std::net::IpAddr;

/// An IPv4 or IPv6 network: `203.0.113.0/24`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `address` or `address/prefix`. Host bits below the prefix are allowed and
    /// ignored, as AWS does.
    pub(crate) fn parse(s: &str) -> Option<IpNet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
        };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Is `ip` inside this network? IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as
    /// their IPv4 address; otherwise an IPv4 network never contains an IPv6 address.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Do the top `prefix` bits of two `width`-bit numbers agree?
fn same_prefix(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let shift = width.saturating_sub(u32::from(prefix));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        IpNet::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4() {
        let n = net("203.0.113.0/24");
        assert!(n.contains(ip("203.0.113.0")));
        assert!(n.contains(ip("203.0.113.255")));
        assert!(!n.contains(ip("203.0.114.1")));
        assert!(net("10.1.2.3/8").contains(ip("10.200.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(net("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!net("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(net("192.0.2.7/32").contains(ip("192.0.2.7")));
    }

    #[test]
    fn ipv6_and_mixing() {
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8:1::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("::1")));
        assert!(!net("::/0").contains(ip("192.0.2.1")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        // IPv4-mapped IPv6 is its IPv4 address.
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "/24",
            "203.0.113.0/",
            "203.0.113.0/33",
            "2001:db8::/129",
            "203.0.113.0/-1",
            "203.0.113.0/+8",
            "203.0.113.0/0008",
            "203.0.113",
            "203.0.113.0/24/1",
            "host.example",
        ] {
            assert_eq!(IpNet::parse(bad), None, "{bad:?}");
        }
    }
}
