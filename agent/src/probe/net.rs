//! Network interfaces from `/sys/class/net`, addresses from procfs.
//!
//! Only physical interfaces are reported: those with a `device` link (loopback, bridges, bonds,
//! veth, tunnels have none). Speed is `speed` in Mb/s (unknown without carrier); the driver is
//! the name of the `device/driver` link. IPv6 addresses come from `/proc/net/if_inet6`; IPv4
//! addresses, which procfs does not list per interface, from the local host entries of
//! `/proc/net/fib_trie` matched to an interface by the longest prefix of `/proc/net/route` (an
//! address whose longest covering route is on two interfaces is left out).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Nic, Root, list_dir};

pub fn probe(root: &Root) -> Vec<Nic> {
    let mut addresses = ipv4_by_interface(root);
    for (name, v6) in ipv6_by_interface(root) {
        addresses.entry(name).or_default().extend(v6);
    }
    list_dir(&root.path("/sys/class/net"))
        .into_iter()
        .filter(|name| name != "lo")
        .filter(|name| root.path(&format!("/sys/class/net/{name}/device")).exists())
        .map(|name| {
            let base = format!("/sys/class/net/{name}");
            let driver = std::fs::read_link(root.path(&format!("{base}/device/driver")))
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
            Nic {
                mac: root.read(&format!("{base}/address")),
                driver,
                speed_mbps: root
                    .read(&format!("{base}/speed"))
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|&s| s > 0)
                    .and_then(|s| u32::try_from(s).ok()),
                carrier: root.read(&format!("{base}/carrier")).map(|c| c == "1"),
                addresses: addresses.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect()
}

/// `/proc/net/if_inet6`: `<32 hex digits> <ifindex> <prefix> <scope> <flags> <name>`.
fn ipv6_by_interface(root: &Root) -> BTreeMap<String, Vec<IpAddr>> {
    let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let text = std::fs::read_to_string(root.path("/proc/net/if_inet6")).unwrap_or_default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(name)) = (fields.first(), fields.get(5)) else {
            continue;
        };
        if let Ok(bits) = u128::from_str_radix(hex, 16) {
            out.entry(name.to_string())
                .or_default()
                .push(IpAddr::V6(Ipv6Addr::from(bits)));
        }
    }
    out
}

/// The interface's own IPv4 addresses: every `/32 host LOCAL` leaf of `fib_trie`, given to the
/// interface whose route in `/proc/net/route` covers it with the longest prefix.
fn ipv4_by_interface(root: &Root) -> BTreeMap<String, Vec<IpAddr>> {
    let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let trie = std::fs::read_to_string(root.path("/proc/net/fib_trie")).unwrap_or_default();
    let routes = routes(root);
    let mut locals: Vec<Ipv4Addr> = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let line = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Ok(addr) = line.parse::<Ipv4Addr>() {
            last = Some(addr);
        } else if line.starts_with("/32 host LOCAL")
            && let Some(addr) = last
            && !addr.is_loopback()
            && !locals.contains(&addr)
        {
            locals.push(addr);
        }
    }
    locals.sort();
    for addr in locals {
        let bits = u32::from(addr);
        let covering: Vec<&Route> = routes
            .iter()
            .filter(|r| r.mask != 0 && bits & r.mask == r.dest)
            .collect();
        let Some(longest) = covering.iter().map(|r| r.mask.count_ones()).max() else {
            continue;
        };
        let mut ifaces: Vec<&str> = covering
            .iter()
            .filter(|r| r.mask.count_ones() == longest)
            .map(|r| r.iface.as_str())
            .collect();
        ifaces.sort_unstable();
        ifaces.dedup();
        // Two interfaces on the same subnet: procfs cannot tell whose address it is; leave it out.
        if let [iface] = ifaces.as_slice() {
            out.entry(iface.to_string())
                .or_default()
                .push(IpAddr::V4(addr));
        }
    }
    out
}

struct Route {
    iface: String,
    dest: u32,
    mask: u32,
}

/// `/proc/net/route`: addresses are hex in host (little-endian) byte order.
fn routes(root: &Root) -> Vec<Route> {
    let text = std::fs::read_to_string(root.path("/proc/net/route")).unwrap_or_default();
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(Route {
                iface: f.first()?.to_string(),
                dest: u32::from_be_bytes(hex(f.get(1)?)?.to_le_bytes()),
                mask: u32::from_be_bytes(hex(f.get(7)?)?.to_le_bytes()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    #[test]
    fn multi_nic_machine() {
        let tree = TempTree::new();
        for (name, mac, speed, carrier) in [
            ("eno1", "aa:bb:cc:dd:ee:01", "10000", "1"),
            ("eno2", "aa:bb:cc:dd:ee:02", "-1", "0"),
            ("enp65s0f0", "aa:bb:cc:dd:ee:03", "25000", "1"),
        ] {
            tree.file(&format!("sys/class/net/{name}/address"), format!("{mac}\n"));
            tree.file(&format!("sys/class/net/{name}/speed"), format!("{speed}\n"));
            tree.file(
                &format!("sys/class/net/{name}/carrier"),
                format!("{carrier}\n"),
            );
            tree.symlink(
                &format!("sys/class/net/{name}/device/driver"),
                "../../../bus/pci/drivers/ixgbe",
            );
        }
        // Virtual interfaces have no `device`.
        tree.file("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        tree.file("sys/class/net/docker0/address", "02:42:00:00:00:01\n");
        tree.file(
            "proc/net/if_inet6",
            "fe80000000000000a8bbccfffeddee01 02 40 20 80     eno1\n\
             00000000000000000000000000000001 01 80 10 80       lo\n",
        );
        tree.file(
            "proc/net/route",
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eno1\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             eno1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             enp65s0f0\t000010AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
             eno2\t000010AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
             enp65s0f0\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n",
        );
        tree.file(
            "proc/net/fib_trie",
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
             \x20    +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n\
             \x20    |-- 172.16.3.4\n        /32 host LOCAL\n\
             \x20    |-- 192.168.7.7\n        /32 host LOCAL\n\
             \x20    |-- 192.0.2.10\n        /32 host LOCAL\n\
             Local:\n     |-- 192.0.2.10\n        /32 host LOCAL\n\
             \x20    |-- 192.0.2.255\n        /32 link BROADCAST\n",
        );
        let nics = probe(&tree.root());
        let names: Vec<&str> = nics.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["eno1", "eno2", "enp65s0f0"]);
        assert_eq!(nics[0].mac.as_deref(), Some("aa:bb:cc:dd:ee:01"));
        assert_eq!(nics[0].driver.as_deref(), Some("ixgbe"));
        assert_eq!(nics[0].speed_mbps, Some(10000));
        assert_eq!(nics[0].carrier, Some(true));
        let addrs: Vec<String> = nics[0].addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["192.0.2.10", "fe80::a8bb:ccff:fedd:ee01"]);
        assert_eq!(nics[1].speed_mbps, None, "no carrier, no speed");
        assert_eq!(nics[1].carrier, Some(false));
        assert!(nics[1].addresses.is_empty());
        // 172.16.0.0/16 is routed on two interfaces: whose 172.16.3.4 is cannot be told.
        assert_eq!(
            nics[2].addresses,
            [IpAddr::V4(Ipv4Addr::new(192, 168, 7, 7))]
        );
    }
}
