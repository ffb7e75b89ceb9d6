//! Bringing up the network in the initramfs: the `BOOTIF` interface (or, without one, each
//! wired interface with a link, racing) gets `beskar7.ip` or a DHCPv4 lease.
//!
//! The DHCP client is minimal and runs on a `UdpSocket` bound to port 68 and tied to the
//! interface (`SO_BINDTODEVICE`, `SO_REUSEADDR`: one client per link at once, the first lease
//! wins): DISCOVER → OFFER → REQUEST → ACK with the broadcast flag set,
//! so servers broadcast their answers and no raw socket is needed. It takes the address, the
//! netmask and the router; it does not renew (the agent lives minutes, leases last longer), and
//! it ignores DNS (the agent talks to IP literals). Addresses and the default route are set
//! with the classic ioctls of [`crate::sys`]. IPv6 is not configured.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::cmdline::{MacAddr, StaticIp};
use crate::probe::{Root, list_dir};
use crate::sys;

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;

/// What a DHCP server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<Ipv4Addr>,
    pub server: Ipv4Addr,
}

/// A BOOTREQUEST of `kind` from `mac`, asking for `requested` from `server` (REQUEST).
pub fn request_packet(
    kind: u8,
    xid: u32,
    mac: [u8; 6],
    requested: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[10] = 0x80; // broadcast flag: answer by broadcast, we have no address yet
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&MAGIC);
    p.extend_from_slice(&[53, 1, kind]);
    p.extend_from_slice(&[61, 7, 1]);
    p.extend_from_slice(&mac);
    p.extend_from_slice(&[55, 3, 1, 3, 54]); // netmask, router, server id
    if let Some((address, server)) = requested {
        p.extend_from_slice(&[50, 4]);
        p.extend_from_slice(&address.octets());
        p.extend_from_slice(&[54, 4]);
        p.extend_from_slice(&server.octets());
    }
    p.push(255);
    p.resize(300, 0); // the BOOTP minimum some servers insist on
    p
}

/// A reply for us: (message type, lease). `None` for anything else (another client's, junk).
pub fn parse_reply(p: &[u8], xid: u32, mac: [u8; 6]) -> Option<(u8, Lease)> {
    if p.len() < 240 || p[0] != 2 || p[4..8] != xid.to_be_bytes() || p[28..34] != mac {
        return None;
    }
    if p[236..240] != MAGIC {
        return None;
    }
    let address = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let (mut kind, mut mask, mut router, mut server) = (None, None, None, None);
    let mut i = 240;
    while i < p.len() {
        let code = p[i];
        if code == 255 {
            break;
        }
        if code == 0 {
            i += 1;
            continue;
        }
        let len = *p.get(i + 1)? as usize;
        let value = p.get(i + 2..i + 2 + len)?;
        let ip = || {
            <[u8; 4]>::try_from(value.get(..4)?)
                .ok()
                .map(Ipv4Addr::from)
        };
        match code {
            53 if len == 1 => kind = Some(value[0]),
            1 => mask = ip(),
            3 => router = ip(),
            54 => server = ip(),
            _ => {}
        }
        i += 2 + len;
    }
    let kind = kind?;
    let prefix_len = match mask {
        Some(m) => {
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return None;
            }
            bits.leading_ones() as u8
        }
        None => 24,
    };
    Some((
        kind,
        Lease {
            address,
            prefix_len,
            router,
            server: server.unwrap_or(Ipv4Addr::UNSPECIFIED),
        },
    ))
}

/// One DHCP exchange on `sock`, sending to `server` (the broadcast address on a machine),
/// until `deadline` or until `stop` is set (another link won the race). Retransmits every 2 s.
pub fn exchange(
    sock: &UdpSocket,
    server: SocketAddr,
    mac: [u8; 6],
    xid: u32,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<Lease, String> {
    let mut offer: Option<Lease> = None;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let packet = match &offer {
            None => request_packet(DISCOVER, xid, mac, None),
            Some(o) => request_packet(REQUEST, xid, mac, Some((o.address, o.server))),
        };
        sock.send_to(&packet, server)
            .map_err(|e| format!("sending DHCP to {server}: {e}"))?;
        let resend = (Instant::now() + Duration::from_secs(2)).min(deadline);
        while let Some(left) = resend.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            let _ = sock.set_read_timeout(Some(left));
            let n = match sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(_) => break, // timed out: send again
            };
            let Some((kind, lease)) = parse_reply(&buf[..n], xid, mac) else {
                continue;
            };
            match (kind, &offer) {
                (OFFER, None) => {
                    offer = Some(lease);
                    break;
                }
                (ACK, Some(o)) if lease.address == o.address => return Ok(lease),
                (NAK, Some(_)) => {
                    offer = None;
                    break;
                }
                _ => {}
            }
        }
    }
    Err("no DHCP lease in time".into())
}

/// A wired interface: name and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mac: [u8; 6],
}

/// Interfaces backed by a device (not `lo`, bridges or other virtual ones), sorted by name.
pub fn links(root: &Root) -> Vec<Link> {
    list_dir(&root.path("/sys/class/net"))
        .into_iter()
        .filter(|n| root.path(&format!("/sys/class/net/{n}/device")).exists())
        .filter_map(|name| {
            let text = root.read(&format!("/sys/class/net/{name}/address"))?;
            let mac: MacAddr = text.parse().ok()?;
            Some(Link { name, mac: mac.0 })
        })
        .collect()
}

/// Which links to try: the one with the `BOOTIF` MAC, else all.
pub fn candidates(all: Vec<Link>, boot_mac: Option<&MacAddr>) -> Vec<Link> {
    match boot_mac {
        Some(mac) => all.into_iter().filter(|l| l.mac == mac.0).collect(),
        None => all,
    }
}

fn has_carrier(root: &Root, name: &str) -> bool {
    root.read(&format!("/sys/class/net/{name}/carrier"))
        .as_deref()
        == Some("1")
}

/// Brings up the network of a real machine (root is `/`) within `budget`; returns a line for
/// the console.
pub fn bring_up(
    root: &Root,
    boot_mac: Option<&MacAddr>,
    ip: Option<&StaticIp>,
    budget: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + budget;
    let ctl = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .map_err(|e| format!("socket: {e}"))?;
    let _ = sys::link_up(&ctl, "lo");
    // Drivers may still be registering interfaces: wait for a candidate.
    let links = loop {
        let found = candidates(links(root), boot_mac);
        if !found.is_empty() {
            break found;
        }
        if Instant::now() >= deadline {
            return Err(match boot_mac {
                Some(mac) => {
                    format!("no interface has the BOOTIF MAC {mac} (is its driver in the image?)")
                }
                None => "no wired network interface (is its driver in the image?)".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    for link in &links {
        sys::link_up(&ctl, &link.name).map_err(|e| format!("bringing {} up: {e}", link.name))?;
    }
    // Links negotiate for a few seconds after going up.
    let carrier_by = (Instant::now() + Duration::from_secs(15)).min(deadline);
    while Instant::now() < carrier_by && !links.iter().any(|l| has_carrier(root, &l.name)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut errors: Vec<String> = Vec::new();
    loop {
        let up: Vec<Link> = links
            .iter()
            .filter(|l| has_carrier(root, &l.name))
            .cloned()
            .collect();
        let result = match ip {
            // The static address goes to the first link with a carrier (BOOTIF's, when given).
            Some(s) => Ok((
                up.first().unwrap_or(&links[0]).clone(),
                Lease {
                    address: s.address,
                    prefix_len: s.prefix_len,
                    router: s.gateway,
                    server: Ipv4Addr::UNSPECIFIED,
                },
            )),
            None if up.is_empty() && links.len() == 1 => race(
                &links,
                deadline.min(Instant::now() + Duration::from_secs(10)),
            ),
            None if up.is_empty() => Err("no link has a carrier".to_string()),
            None => race(&up, deadline.min(Instant::now() + Duration::from_secs(10))),
        };
        match result.and_then(|(link, l)| apply(&ctl, &link.name, &l).map(|()| (link, l))) {
            Ok((link, l)) => {
                return Ok(format!(
                    "{} is {}/{}{} ({})",
                    link.name,
                    l.address,
                    l.prefix_len,
                    l.router.map(|r| format!(" via {r}")).unwrap_or_default(),
                    if ip.is_some() { "beskar7.ip" } else { "DHCP" }
                ));
            }
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
        if Instant::now() >= deadline || ip.is_some() {
            return Err(format!("no network: {}", errors.join("; ")));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// DHCP on every link of `links` at once; the first lease wins and the other clients stop.
fn race(links: &[Link], deadline: Instant) -> Result<(Link, Lease), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    for link in links {
        let (link, stop, tx) = (link.clone(), Arc::clone(&stop), tx.clone());
        std::thread::spawn(move || {
            let result = dhcp_on(&link, deadline, &stop);
            let _ = tx.send((link, result));
        });
    }
    drop(tx);
    let mut errors = Vec::new();
    for (link, result) in rx {
        match result {
            Ok(lease) => {
                stop.store(true, Ordering::Relaxed);
                return Ok((link, lease));
            }
            Err(e) => errors.push(format!("{}: {e}", link.name)),
        }
    }
    Err(errors.join("; "))
}

fn dhcp_on(link: &Link, deadline: Instant, stop: &AtomicBool) -> Result<Lease, String> {
    // One socket per link, all on port 68 (SO_REUSEADDR and SO_BINDTODEVICE before binding).
    let sock = sys::udp_socket_on_device(&link.name, 68)
        .map_err(|e| format!("a DHCP socket on port 68: {e}"))?;
    let mut xid = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut xid)
        .map_err(|_| "no randomness for the DHCP transaction ID".to_string())?;
    exchange(
        &sock,
        SocketAddr::from((Ipv4Addr::BROADCAST, 67)),
        link.mac,
        u32::from_be_bytes(xid),
        deadline,
        stop,
    )
}

fn apply(ctl: &UdpSocket, name: &str, lease: &Lease) -> Result<(), String> {
    let mask = Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(lease.prefix_len))
            .unwrap_or(0),
    );
    sys::set_ipv4(ctl, name, lease.address, mask)
        .map_err(|e| format!("setting the address: {e}"))?;
    if let Some(router) = lease.router {
        sys::add_default_route(ctl, name, router).map_err(|e| format!("adding the route: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// A server's reply to `request` of `kind`, granting 10.0.2.15/24 via 10.0.2.2.
    fn reply(request: &[u8], kind: u8) -> Vec<u8> {
        let mut p = request[..236].to_vec();
        p[0] = 2;
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, kind, 0, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2]);
        p.extend_from_slice(&[54, 4, 10, 0, 2, 2, 51, 4, 0, 0, 14, 16, 255]);
        p
    }

    #[test]
    fn packets_and_replies() {
        let p = request_packet(
            REQUEST,
            0xdeadbeef,
            MAC,
            Some(([10, 0, 2, 15].into(), [10, 0, 2, 2].into())),
        );
        assert_eq!(p.len(), 300);
        assert_eq!((p[0], p[1], p[2], p[10]), (1, 1, 6, 0x80));
        assert_eq!(&p[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&p[236..243], &[99, 130, 83, 99, 53, 1, REQUEST]);
        let options = &p[240..];
        assert!(options.windows(6).any(|w| w == [50, 4, 10, 0, 2, 15]));
        assert!(options.windows(6).any(|w| w == [54, 4, 10, 0, 2, 2]));

        let (kind, lease) = parse_reply(&reply(&p, ACK), 0xdeadbeef, MAC).unwrap();
        assert_eq!(kind, ACK);
        assert_eq!(
            lease,
            Lease {
                address: [10, 0, 2, 15].into(),
                prefix_len: 24,
                router: Some([10, 0, 2, 2].into()),
                server: [10, 0, 2, 2].into()
            }
        );
        assert!(
            parse_reply(&reply(&p, ACK), 1, MAC).is_none(),
            "another transaction"
        );
        assert!(
            parse_reply(&reply(&p, ACK), 0xdeadbeef, [0; 6]).is_none(),
            "another client"
        );
        assert!(
            parse_reply(&p, 0xdeadbeef, MAC).is_none(),
            "a request, not a reply"
        );
        let mut cut = reply(&p, ACK);
        cut.truncate(248); // inside the netmask option
        assert!(parse_reply(&cut, 0xdeadbeef, MAC).is_none(), "cut options");
    }

    #[test]
    fn a_whole_exchange_with_a_server_on_loopback_through_a_nak() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut seen = Vec::new();
            // DISCOVER (dropped, so the client resends), DISCOVER, REQUEST (NAK), DISCOVER,
            // REQUEST (ACK).
            for answer in [None, Some(OFFER), Some(NAK), Some(OFFER), Some(ACK)] {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let kind = buf[242];
                seen.push(kind);
                // Noise first: a reply for another client.
                let mut other = reply(&buf[..n], OFFER);
                other[28] ^= 0xff;
                server.send_to(&other, from).unwrap();
                if let Some(a) = answer {
                    server.send_to(&reply(&buf[..n], a), from).unwrap();
                }
            }
            seen
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let lease = exchange(
            &client,
            addr,
            MAC,
            42,
            Instant::now() + Duration::from_secs(20),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(lease.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(
            thread.join().unwrap(),
            [DISCOVER, DISCOVER, REQUEST, DISCOVER, REQUEST]
        );
    }

    #[test]
    fn silence_ends_at_the_deadline() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        let err = exchange(
            &client,
            silent.local_addr().unwrap(),
            MAC,
            1,
            start + Duration::from_millis(300),
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert_eq!(err, "no DHCP lease in time");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_client_that_lost_the_race_stops() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let far = start + Duration::from_secs(30);
        assert!(exchange(&client, silent.local_addr().unwrap(), MAC, 1, far, &stop).is_err());
        // Within one retransmission period of the stop.
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn links_and_bootif() {
        let t = TempTree::new();
        for (name, mac, device) in [
            ("eno1", "3c:ec:ef:00:00:01", true),
            ("eno2", "3c:ec:ef:00:00:02", true),
            ("lo", "00:00:00:00:00:00", false),
            ("br0", "3c:ec:ef:00:00:01", false),
        ] {
            t.file(&format!("sys/class/net/{name}/address"), format!("{mac}\n"));
            if device {
                t.dir(&format!("sys/class/net/{name}/device"));
            }
        }
        let all = links(&t.root());
        assert_eq!(
            all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["eno1", "eno2"]
        );
        let boot: MacAddr = "3c:ec:ef:00:00:02".parse().unwrap();
        let picked = candidates(all.clone(), Some(&boot));
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].name, "eno2");
        assert_eq!(candidates(all, None).len(), 2);
    }
}
