//! CIDR checks as OpenBao's AppRole makes them.
//!
//! `secret_id_bound_cidrs` and a secret id's `cidr_list` / `token_bound_cidrs` must be CIDR
//! blocks (Go's `net.ParseCIDR`: `10.0.0.0/8`, not a bare address), and a secret id's blocks
//! must lie inside the role's. A role's `token_bound_cidrs` also takes bare addresses (Go's
//! `ParseAddrs`), checked by [`parse_addrs`].

use std::net::IpAddr;

use ipnet::IpNet;
use tresor_sdk::auth::parse_cidr;

/// `net.ParseCIDR`: an address, a slash and a prefix length; the host bits may be set.
pub(super) fn parse_block(item: &str) -> Result<IpNet, String> {
    let item = item.trim();
    item.parse::<IpNet>()
        .map_err(|_| format!("invalid CIDR address: {item}"))
}

/// The first block of `list` that is not a valid CIDR block, as OpenBao words it.
pub(super) fn validate_blocks(list: &[String]) -> Result<(), String> {
    list.iter().try_for_each(|b| parse_block(b).map(drop))
}

/// Go's `ParseAddrs` for `token_bound_cidrs`: blocks or bare addresses. The error is OpenBao's.
pub(super) fn parse_addrs(list: &[String]) -> Result<(), String> {
    for item in list {
        if parse_cidr(item).is_err() {
            return Err(format!(
                "error parsing address {item:?}: Unable to convert {item:?} to an IPv4 or IPv6 address, or a UNIX Socket"
            ));
        }
    }
    Ok(())
}

/// Token CIDR bindings as OpenBao keeps them (go-sockaddr's form): a single host (`/32`,
/// `/128`) becomes the bare address, other blocks keep their address as written, IPv6
/// canonicalised. Role reads, token lookups and the binding itself all show this form.
pub(super) fn sockaddr_form(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|item| {
            let item = item.trim();
            if let Ok(net) = item.parse::<IpNet>() {
                if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    format!("{}/{}", net.addr(), net.prefix_len())
                }
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                ip.to_string()
            } else {
                item.to_owned()
            }
        })
        .collect()
}

/// Whether every block of `inner` lies inside some block of `outer` (an empty `inner` always
/// does; an empty `outer` binds nothing). Bare addresses in `outer` count as /32, as in
/// OpenBao; a block that does not parse makes the answer false (fail closed).
pub(super) fn subset(outer: &[String], inner: &[String]) -> bool {
    if inner.is_empty() || outer.is_empty() {
        return true;
    }
    let outer: Option<Vec<IpNet>> = outer
        .iter()
        .map(|b| {
            if b.contains('/') {
                parse_block(b).ok()
            } else {
                parse_block(&format!("{b}/32")).ok()
            }
        })
        .collect();
    let Some(outer) = outer else {
        return false;
    };
    if !outer.iter().all(canonical) {
        return false;
    }
    inner.iter().all(|b| {
        parse_block(b).is_ok_and(|net| {
            canonical(&net)
                && outer.iter().any(|o| {
                    o.prefix_len() <= net.prefix_len()
                        && same_family(o, &net)
                        && o.contains(&net.network())
                })
        })
    })
}

/// Go's `cidrutil.Subset` refuses a /0 block unless its address is all zeros.
fn canonical(net: &IpNet) -> bool {
    net.prefix_len() > 0 || net.addr().is_unspecified()
}

fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

/// OpenBao's subset error, naming both lists as Go's `%q` prints a `[]string`.
pub(super) fn subset_error(role: &[String], secret: &[String]) -> String {
    let role: Vec<String> = role
        .iter()
        .map(|b| {
            if b.contains('/') {
                b.clone()
            } else {
                format!("{b}/32")
            }
        })
        .collect();
    format!(
        "failed to verify subset relationship between CIDR blocks on the role {} and CIDR blocks on the secret ID {}",
        go_quoted(&role),
        go_quoted(secret)
    )
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(super) fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// A list for a denial detail: `[10.0.0.0/8, 192.168.0.0/16]`.
pub(super) fn shown(list: &[String]) -> String {
    format!("[{}]", list.join(", "))
}

/// Whether `ip` is inside one of `blocks` (IPv4-mapped IPv6 clients count as IPv4).
pub(super) fn allows(blocks: &[String], ip: IpAddr) -> bool {
    tresor_sdk::auth::cidrs_allow(blocks, Some(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn blocks_must_have_a_prefix_length_but_addresses_may_for_tokens() {
        assert!(validate_blocks(&v(&["10.0.0.0/8", " 10.1.2.3/8", "::1/128"])).is_ok());
        assert_eq!(
            validate_blocks(&v(&["10.0.0.0/8", "127.0.0.1"])),
            Err("invalid CIDR address: 127.0.0.1".into())
        );
        assert_eq!(
            validate_blocks(&v(&["10.0.0.0/33"])),
            Err("invalid CIDR address: 10.0.0.0/33".into())
        );
        assert!(parse_addrs(&v(&["127.0.0.1", "10.0.0.0/8"])).is_ok());
        assert_eq!(
            parse_addrs(&v(&["bad"])),
            Err("error parsing address \"bad\": Unable to convert \"bad\" to an IPv4 or IPv6 address, or a UNIX Socket".into())
        );
    }

    #[test]
    fn a_secret_ids_blocks_must_lie_inside_the_roles() {
        let role = v(&["10.0.0.0/8", "192.168.1.7"]);
        assert!(subset(&role, &v(&["10.1.0.0/16", "192.168.1.7/32"])));
        assert!(subset(&role, &v(&["10.0.0.0/8"])));
        assert!(!subset(&role, &v(&["0.0.0.0/0"])));
        assert!(!subset(&role, &v(&["11.0.0.0/16"])));
        assert!(!subset(&role, &v(&["192.168.1.0/24"])));
        assert!(
            !subset(&v(&["::/0"]), &v(&["10.0.0.0/8"])),
            "families differ"
        );
        assert!(subset(&v(&["0.0.0.0/0"]), &v(&["10.0.0.0/8"])));
        assert!(
            subset(&[], &v(&["10.0.0.0/8"])),
            "an unbound role allows any"
        );
        assert!(subset(&role, &[]));
        assert!(!subset(&v(&["garbage"]), &v(&["10.0.0.0/8"])));
        assert!(
            !subset(&v(&["10.0.0.0/0"]), &v(&["10.0.0.0/8"])),
            "not canonical"
        );
    }

    #[test]
    fn messages_quote_lists_as_go_does() {
        assert_eq!(
            subset_error(&v(&["10.0.0.0/8", "1.2.3.4"]), &v(&["192.168.0.0/16"])),
            "failed to verify subset relationship between CIDR blocks on the role [\"10.0.0.0/8\" \"1.2.3.4/32\"] and CIDR blocks on the secret ID [\"192.168.0.0/16\"]"
        );
        assert_eq!(shown(&v(&["a", "b"])), "[a, b]");
    }

    #[test]
    fn token_bindings_take_go_sockaddrs_form() {
        assert_eq!(
            sockaddr_form(&v(&[
                "10.0.0.1/32",
                " 10.1.2.3/8",
                "::1/128",
                "2001:DB8::/32",
                "10.0.0.9"
            ])),
            v(&["10.0.0.1", "10.1.2.3/8", "::1", "2001:db8::/32", "10.0.0.9"])
        );
    }

    #[test]
    fn membership_handles_mapped_ipv4_clients() {
        let blocks = v(&["127.0.0.0/8"]);
        assert!(allows(&blocks, "127.0.0.1".parse().unwrap()));
        assert!(allows(&blocks, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allows(&blocks, "10.0.0.1".parse().unwrap()));
    }
}
