//! Requests in flight per client, in this process: a client that holds requests open (a body
//! sent byte by byte, say) takes at most its own share of the server's concurrency limit,
//! not all of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub struct InFlight {
    per_client: usize,
    clients: Mutex<HashMap<String, usize>>,
}

/// One request of a client in flight; its place is given back when dropped.
pub struct Slot {
    in_flight: Arc<InFlight>,
    client: String,
}

impl InFlight {
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more request of `client`, unless it already has `per_client` in flight.
    pub fn enter(self: &Arc<Self>, client: String) -> Option<Slot> {
        let mut clients = self.lock();
        let count = clients.entry(client.clone()).or_default();
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Slot {
            in_flight: self.clone(),
            client,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut clients = self.in_flight.lock();
        if let Some(count) = clients.get_mut(&self.client) {
            *count -= 1;
            // Only clients with requests in flight are kept: the map stays as small as that.
            if *count == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_share_and_gets_it_back() {
        let in_flight = InFlight::new(2);
        let a1 = in_flight.enter("a".into()).expect("first");
        let a2 = in_flight.enter("a".into()).expect("second");
        assert!(in_flight.enter("a".into()).is_none(), "a third is refused");
        let b = in_flight
            .enter("b".into())
            .expect("another client is not affected");
        drop(a1);
        let a3 = in_flight.enter("a".into()).expect("a place came back");
        drop((a2, a3, b));
        assert!(in_flight.lock().is_empty(), "nobody in flight, nothing kept");
    }
}
