//! Requests in flight per client, in this process: a client that holds requests open (a body
//! sent byte by byte, say) takes at most its own share of the server's concurrency limit,
//! not all of it. A client is its address's network ([`super::ip_network`]), kept as an
//! `IpAddr`: nothing is formatted or allocated per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct InFlight {
    per_client: usize,
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Default)]
struct Client {
    in_flight: usize,
    /// Refused since it last had nothing in flight.
    refused: bool,
}

/// A request refused: `first` for the first refusal since the client last had nothing in
/// flight, so a client hammering the limit is reported once, not on every request.
pub struct Refused {
    pub first: bool,
}

/// One request of a client in flight; its place is given back when dropped.
pub struct Slot {
    in_flight: Arc<InFlight>,
    client: IpAddr,
}

impl InFlight {
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more request of `client`, unless it already has `per_client` in flight.
    pub fn enter(self: &Arc<Self>, client: IpAddr) -> Result<Slot, Refused> {
        let mut clients = self.lock();
        if let Some(known) = clients.get_mut(&client) {
            if known.in_flight >= self.per_client {
                let first = !known.refused;
                known.refused = true;
                return Err(Refused { first });
            }
            known.in_flight += 1;
        } else {
            // `per_client` is at least 1 (the settings say so).
            clients.insert(
                client,
                Client {
                    in_flight: 1,
                    refused: false,
                },
            );
        }
        Ok(Slot {
            in_flight: self.clone(),
            client,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        crate::sync::lock(&self.clients)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut clients = self.in_flight.lock();
        if let Some(known) = clients.get_mut(&self.client) {
            known.in_flight -= 1;
            // Only clients with requests in flight are kept: the map stays as small as that.
            if known.in_flight == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn first_refusal(result: Result<Slot, Refused>) -> Option<bool> {
        result.err().map(|refused| refused.first)
    }

    #[test]
    fn each_client_has_its_own_share_and_gets_it_back() {
        let in_flight = InFlight::new(2);
        let a1 = in_flight.enter(A).ok().expect("first");
        let a2 = in_flight.enter(A).ok().expect("second");
        assert_eq!(
            first_refusal(in_flight.enter(A)),
            Some(true),
            "a third is refused"
        );
        assert_eq!(
            first_refusal(in_flight.enter(A)),
            Some(false),
            "and reported once"
        );
        let b = in_flight.enter(B).ok().expect("another client is not affected");
        drop(a1);
        let a3 = in_flight.enter(A).ok().expect("a place came back");
        drop((a2, a3, b));
        assert!(in_flight.lock().is_empty(), "nobody in flight, nothing kept");
        let _a1 = in_flight.enter(A).ok().expect("a fresh start");
        let _a2 = in_flight.enter(A).ok().expect("a fresh start");
        assert_eq!(
            first_refusal(in_flight.enter(A)),
            Some(true),
            "a new episode is reported"
        );
    }
}
