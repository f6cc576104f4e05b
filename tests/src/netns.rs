//! A test host of our own: a network namespace joined to this machine by a veth pair.
//!
//! The API server refuses to proxy to loopback endpoints, so a controller that
//! `kubeseal --fetch-cert` must reach through the service proxy has to listen on a
//! non-loopback address. Rather than use the machine's real interface, the harness makes
//! a private /30 between the host side of a veth pair and a network namespace. Traffic
//! stays on this machine, and the reaper ([`crate::process`]) deletes both at exit.
//!
//! Each control plane has a test host of its own. Names carry a random suffix, and a
//! /30 is free only if no route or address on the machine overlaps it and no other
//! test host of this process has claimed it, so control planes started at the same
//! time (before either has created its veth) never share one.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};

/// The addresses and names of one test host. Created by [`TestHost::create`].
#[derive(Debug, Clone)]
pub struct TestHost {
    /// The network namespace (`ip netns` name).
    pub netns: String,
    /// The host-side veth interface.
    pub veth_host: String,
    /// The host side's address; the API server listens here.
    pub host_ip: Ipv4Addr,
    /// The namespace side's address; the controller under test listens here.
    pub ns_ip: Ipv4Addr,
}

impl TestHost {
    /// Picks names and a free /30 in 10.254.0.0/16, distinct from every other test
    /// host this process has planned; nothing is created yet.
    pub fn plan() -> Result<Self> {
        // The networks this process has handed out. Never released: a process starts
        // only a handful of test hosts, and 16384 /30s fit in the /16.
        static CLAIMED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        let suffix = crate::random_hex(4);
        let routes = ip(&["-o", "-4", "route", "show", "table", "all"]).unwrap_or_default();
        let addrs = ip(&["-o", "-4", "addr", "show"]).unwrap_or_default();
        let taken: Vec<(u32, u32)> = routes
            .split_whitespace()
            .chain(addrs.split_whitespace())
            .filter_map(parse_cidr)
            .collect();
        for attempt in 0..64u32 {
            let r = crate::random_hex(2);
            let n = u32::from_str_radix(&r, 16).unwrap_or(attempt) & 0xfffc;
            let net = u32::from(Ipv4Addr::new(10, 254, 0, 0)) | n;
            let clash = taken
                .iter()
                .any(|(base, mask)| (net & mask) == *base || (base & 0xffff_fffc) == net);
            if clash || claimed.contains(&net) {
                continue;
            }
            claimed.push(net);
            return Ok(Self {
                netns: format!("sealant-e2e-{suffix}"),
                veth_host: format!("se{suffix}h"),
                host_ip: Ipv4Addr::from(net + 1),
                ns_ip: Ipv4Addr::from(net + 2),
            });
        }
        bail!("no free /30 in 10.254.0.0/16 for the test host");
    }

    /// Creates the namespace, the veth pair and the addresses.
    pub fn create(&self) -> Result<()> {
        let peer = format!("{}n", &self.veth_host[..self.veth_host.len() - 1]);
        let host_cidr = format!("{}/30", self.host_ip);
        let ns_cidr = format!("{}/30", self.ns_ip);
        let ns = self.netns.as_str();
        ip(&["netns", "add", ns])?;
        ip(&[
            "link",
            "add",
            &self.veth_host,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            ns,
        ])?;
        ip(&["addr", "add", &host_cidr, "dev", &self.veth_host])?;
        ip(&["link", "set", &self.veth_host, "up"])?;
        ip(&["-n", ns, "addr", "add", &ns_cidr, "dev", &peer])?;
        ip(&["-n", ns, "link", "set", &peer, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A command that runs `program` inside the test host's network namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(ip_binary());
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }
}

/// `ip` from iproute2; root's PATH has it, a user's may not.
pub fn ip_binary() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new(ip_binary())
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2 is needed for the test host)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {} (the test host needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `a.b.c.d/n` or `a.b.c.d` as (network, mask).
fn parse_cidr(token: &str) -> Option<(u32, u32)> {
    let (addr, len) = match token.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()?),
        None => (token, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    // A default route (/0) says nothing about which private /30 is free.
    if len == 0 || len > 32 {
        return None;
    }
    let mask = u32::MAX << (32 - len);
    Some((u32::from(addr) & mask, mask))
}

#[cfg(test)]
mod tests {
    use super::parse_cidr;

    #[test]
    fn parse_cidr_reads_networks_and_hosts() {
        assert_eq!(
            parse_cidr("10.254.0.4/30"),
            Some((0x0afe_0004, 0xffff_fffc))
        );
        assert_eq!(parse_cidr("192.0.2.2"), Some((0xc000_0202, u32::MAX)));
        assert_eq!(parse_cidr("default"), None);
    }
}
