//! The client's IP address: the socket peer — unless the peer is a trusted proxy
//! (`ISSUER_TRUSTED_PROXIES`), then the nearest address in `X-Forwarded-For` (or `Forwarded:
//! for=`) that is not itself a trusted proxy. Headers from anyone else are ignored: a client
//! could write any address there.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::values::Cidr;

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Proxies append: walk from the nearest hop back to the first untrusted one.
    forwarded_chain(headers)
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Every address the proxies recorded, first hop first; unparseable entries end the chain
/// there (nothing before them can be trusted).
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
            .collect()
    };
    let xff = values("x-forwarded-for");
    let entries: Vec<String> = if !xff.is_empty() {
        xff
    } else {
        values("forwarded")
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for")
                        .then(|| value.trim_matches('"').to_owned())
                })
            })
            .collect()
    };
    let mut chain = Vec::new();
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(ip) => chain.push(ip),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies: Vec<Cidr> = vec![
            "10.0.0.0/8".parse().expect("cidr"),
            "::1/128".parse().expect("cidr"),
        ];
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        let spoof = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_ip(stranger, &spoof, &proxies),
            stranger,
            "untrusted peers cannot claim an address"
        );
        assert_eq!(client_ip(proxy, &spoof, &proxies).to_string(), "198.51.100.7");
        // A client prepending a fake entry gains nothing: the nearest untrusted hop counts.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.9.9.9")]);
        assert_eq!(client_ip(proxy, &chain, &proxies).to_string(), "198.51.100.7");
        let rfc7239 = headers(&[(
            "forwarded",
            "for=\"[2001:db8::5]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(client_ip(proxy, &rfc7239, &proxies).to_string(), "2001:db8::5");
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(proxy, &garbage, &proxies), proxy);
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &[]),
            proxy,
            "no proxies configured"
        );
    }
}
