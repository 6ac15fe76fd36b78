//! Which connections the HTTP server (`server.rs`) keeps when it is full: the connection policy
//! that keeps `/metrics` answering while slow or streaming clients try to take every place.
//!
//! Every open connection has an entry here, in one of four states:
//! - *fresh*: accepted, its first request head not complete yet;
//! - *busy*: a request is being answered;
//! - *idle*: a keep-alive connection between requests (it may be sending its next head);
//! - *streaming*: following `GET /events`.
//!
//! Two budgets: fresh, busy and idle connections share `max_connections` (scrapes and API
//! requests); streams have `max_streams` of their own, so live pages can never take the places of
//! scrapes, nor the reverse. A connection moves from the first budget to the second when its
//! request turns out to be `/events`. Besides, one client address (an IPv4 address, or an IPv6
//! /64 network, what one host usually has) holds at most `max_per_client` connections of both
//! kinds.
//!
//! When a budget is full, the newcomer is served and an older connection yields: the one that
//! has waited longest among those that are not answering a request (fresh and idle ones for a
//! new connection, streams for a new stream; for a client at its limit, that client's own). A
//! connection that has been slow to send its request is the cheapest to lose (the client
//! retries; a browser's `EventSource` reconnects by itself), and a new one that sends its request
//! at once, as a scraper does, is answered before it is old enough to yield. A connection the
//! server has not read from yet (its request may be waiting in the socket) yields only when the
//! accept loop, having let every connection be read once, finds no other. Only when every place
//! is held by a request being answered is the newcomer refused (closed at once). Every refusal
//! and eviction is counted by reason.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    Busy,
    Idle,
    Streaming,
    /// Evicted: out of every count already, its task closing it.
    Leaving,
}

struct Entry {
    client: IpAddr,
    state: State,
    /// When the entry entered its state (a sequence number: smaller is older).
    since: u64,
    /// Request bytes arrived since the last response began (set by the connection's socket):
    /// tells a slow client from an idle one.
    reading: Arc<AtomicBool>,
    /// The server tried to read from it at least once.
    polled: bool,
    /// Notified to close the connection.
    close: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    entries: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
    /// Fresh, busy and idle connections.
    requests: usize,
    streams: usize,
}

/// Counts of what the policy refused or evicted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyStats {
    /// New connections closed at once: every place of `max_connections` was answering a
    /// request.
    pub refused_full: u64,
    /// New connections closed at once: their client address held `max_per_client` connections,
    /// all answering a request.
    pub refused_per_client: u64,
    /// Idle connections (keep-alive, or new without a byte of request) closed for a newcomer.
    pub evicted_idle: u64,
    /// Connections in the middle of sending a request head closed for a newcomer.
    pub evicted_slow: u64,
    /// Event streams closed for a newcomer.
    pub evicted_streams: u64,
}

#[derive(Default)]
struct Counters {
    refused_full: AtomicU64,
    refused_per_client: AtomicU64,
    evicted_idle: AtomicU64,
    evicted_slow: AtomicU64,
    evicted_streams: AtomicU64,
}

/// The budgets (see the module documentation; each at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    pub max_connections: usize,
    pub max_streams: usize,
    pub max_per_client: usize,
}

/// Every open connection of one server.
pub struct Table {
    inner: Mutex<Inner>,
    budgets: Budgets,
    counters: Counters,
}

/// Why a new connection is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    PerClient,
    /// Only connections not read from yet could yield: read them, then ask again (not counted).
    NotYet,
}

/// What [`Table::evict_oldest`] did.
#[derive(Debug, PartialEq, Eq)]
enum Eviction {
    Done,
    /// Nothing may yield.
    None,
    /// Only connections not read from yet may yield.
    NotYet,
}

/// The client a per-client limit counts: an IPv4 address (an IPv4-mapped IPv6 address as the
/// IPv4 one), or an IPv6 /64 network, since one host usually has a whole /64 to pick from.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

impl Table {
    pub fn new(budgets: Budgets) -> Table {
        Table {
            inner: Mutex::default(),
            budgets: Budgets {
                max_connections: budgets.max_connections.max(1),
                max_streams: budgets.max_streams.max(1),
                max_per_client: budgets.max_per_client.max(1),
            },
            counters: Counters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection from `peer`, evicting an older one if a budget is full; a
    /// refusal (counted) when nothing can yield. `reading` is the connection's "request bytes
    /// arrived" flag. With `patient`, [`Refused::NotYet`] when only connections not read from
    /// yet could yield.
    pub fn admit(
        self: &Arc<Table>,
        peer: IpAddr,
        reading: Arc<AtomicBool>,
        patient: bool,
    ) -> Result<Slot, Refused> {
        let client = client_of(peer);
        let mut inner = self.lock();
        if inner.per_client.get(&client).copied().unwrap_or(0) >= self.budgets.max_per_client {
            let own = |e: &Entry| e.client == client && e.state != State::Busy;
            self.make_room(&mut inner, own, patient, Refused::PerClient)?;
        }
        if inner.requests >= self.budgets.max_connections {
            let waiting = |e: &Entry| matches!(e.state, State::Fresh | State::Idle);
            self.make_room(&mut inner, waiting, patient, Refused::Full)?;
        }
        let id = inner.next;
        inner.next += 1;
        let close = Arc::new(Notify::new());
        inner.entries.insert(
            id,
            Entry {
                client,
                state: State::Fresh,
                since: id,
                reading,
                polled: false,
                close: close.clone(),
            },
        );
        *inner.per_client.entry(client).or_default() += 1;
        inner.requests += 1;
        Ok(Slot {
            table: self.clone(),
            id,
            close,
        })
    }

    /// Evicts a connection for a newcomer, or says why it can not be admitted (`refused`,
    /// counted, when nothing may yield).
    fn make_room(
        &self,
        inner: &mut Inner,
        may_yield: impl Fn(&Entry) -> bool,
        patient: bool,
        refused: Refused,
    ) -> Result<(), Refused> {
        match self.evict_oldest(inner, may_yield, patient) {
            Eviction::Done => Ok(()),
            Eviction::NotYet => Err(Refused::NotYet),
            Eviction::None => {
                let counter = match refused {
                    Refused::PerClient => &self.counters.refused_per_client,
                    _ => &self.counters.refused_full,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Err(refused)
            }
        }
    }

    /// Closes the oldest connection `may_yield` allows and the server read from (taking it out
    /// of every count now). If there is none but some not read from yet, and `patient`:
    /// [`Eviction::NotYet`]; without `patient` the oldest of those goes.
    fn evict_oldest(
        &self,
        inner: &mut Inner,
        may_yield: impl Fn(&Entry) -> bool,
        patient: bool,
    ) -> Eviction {
        let oldest = |polled: bool| {
            (inner.entries.iter())
                .filter(|(_, e)| e.state != State::Leaving && may_yield(e))
                .filter(|(_, e)| e.polled || !polled)
                .min_by_key(|(_, e)| e.since)
                .map(|(id, _)| *id)
        };
        let id = match (oldest(true), patient) {
            (Some(id), _) => id,
            (None, true) if oldest(false).is_some() => return Eviction::NotYet,
            (None, _) => match oldest(false) {
                Some(id) => id,
                None => return Eviction::None,
            },
        };
        let (client, state) = {
            let entry = &inner.entries[&id];
            (entry.client, entry.state)
        };
        let counter = match state {
            State::Streaming => &self.counters.evicted_streams,
            _ if inner.entries[&id].reading.load(Ordering::Relaxed) => &self.counters.evicted_slow,
            _ => &self.counters.evicted_idle,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Self::uncount(inner, client, state);
        let entry = inner.entries.get_mut(&id).expect("found above");
        entry.state = State::Leaving;
        // A permit is stored if the task is not waiting yet: it closes as soon as it looks.
        entry.close.notify_one();
        Eviction::Done
    }

    fn uncount(inner: &mut Inner, client: IpAddr, state: State) {
        match state {
            State::Leaving => return,
            State::Streaming => inner.streams -= 1,
            State::Fresh | State::Busy | State::Idle => inner.requests -= 1,
        }
        if let Some(n) = inner.per_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                inner.per_client.remove(&client);
            }
        }
    }

    /// Moves connection `id` to `state` (not out of Leaving; not between budgets).
    fn set(&self, id: u64, state: State) {
        let mut inner = self.lock();
        let since = inner.next;
        if let Some(entry) = inner.entries.get_mut(&id) {
            if !matches!(entry.state, State::Leaving | State::Streaming) && entry.state != state {
                entry.state = state;
                entry.since = since;
                inner.next += 1;
            }
        }
    }

    /// Connections open now, event streams included.
    pub fn open(&self) -> usize {
        let inner = self.lock();
        inner.requests + inner.streams
    }

    /// Event streams open now (not counting those evicted, which are closing).
    pub fn streams(&self) -> usize {
        self.lock().streams
    }

    /// What the policy refused and evicted so far.
    pub fn stats(&self) -> PolicyStats {
        let c = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PolicyStats {
            refused_full: read(&c.refused_full),
            refused_per_client: read(&c.refused_per_client),
            evicted_idle: read(&c.evicted_idle),
            evicted_slow: read(&c.evicted_slow),
            evicted_streams: read(&c.evicted_streams),
        }
    }
}

/// One admitted connection's place in the table, given back when dropped.
pub struct Slot {
    table: Arc<Table>,
    id: u64,
    close: Arc<Notify>,
}

impl Slot {
    /// The server tries to read from the connection for the first time.
    pub fn polled(&self) {
        if let Some(entry) = self.table.lock().entries.get_mut(&self.id) {
            entry.polled = true;
        }
    }

    /// Completes once the connection was evicted (see the module documentation).
    pub async fn evicted(&self) {
        self.close.notified().await;
    }

    /// Whether the connection has not completed a request head yet.
    pub fn fresh(&self) -> bool {
        let inner = self.table.lock();
        inner.entries.get(&self.id).map(|e| e.state) == Some(State::Fresh)
    }

    /// A request head arrived: it is being answered.
    pub fn busy(&self) {
        self.table.set(self.id, State::Busy);
    }

    /// A response was sent: the connection waits for its next request.
    pub fn idle(&self) {
        self.table.set(self.id, State::Idle);
    }

    /// The request is `GET /events`: from now on the connection counts as a stream, and if
    /// streams are over their budget, the oldest other one yields.
    pub fn streaming(&self) {
        let table = &self.table;
        let mut inner = table.lock();
        let since = inner.next;
        let Some(entry) = inner.entries.get_mut(&self.id) else {
            return;
        };
        if matches!(entry.state, State::Leaving | State::Streaming) {
            return;
        }
        entry.state = State::Streaming;
        entry.since = since;
        inner.next += 1;
        inner.requests -= 1;
        inner.streams += 1;
        if inner.streams > table.budgets.max_streams {
            // There is an older stream (the budget is at least 1), read from.
            let older = |e: &Entry| e.state == State::Streaming && e.since < since;
            table.evict_oldest(&mut inner, older, false);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(entry) = inner.entries.remove(&self.id) {
            Table::uncount(&mut inner, entry.client, entry.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn table(max_connections: usize, max_streams: usize, max_per_client: usize) -> Arc<Table> {
        Arc::new(Table::new(Budgets {
            max_connections,
            max_streams,
            max_per_client,
        }))
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    /// Admits a connection the server then reads from.
    fn admit(table: &Arc<Table>, last: u8) -> Result<Slot, Refused> {
        let slot = table.admit(ip(last), Arc::default(), true)?;
        slot.polled();
        Ok(slot)
    }

    fn evicted(slot: &Slot) -> bool {
        slot.table.lock().entries[&slot.id].state == State::Leaving
    }

    #[test]
    fn a_full_budget_evicts_the_oldest_waiting_connection() {
        let t = table(3, 8, 8);
        let a = admit(&t, 1).unwrap();
        let b = admit(&t, 2).unwrap();
        let c = admit(&t, 3).unwrap();
        // a answers a request; b sent part of a head; c sent nothing.
        a.busy();
        b.table.lock().entries[&b.id]
            .reading
            .store(true, Ordering::Relaxed);
        let d = admit(&t, 4).unwrap();
        assert!(evicted(&b) && !evicted(&a) && !evicted(&c));
        assert_eq!(t.stats().evicted_slow, 1);
        // c is now the oldest waiting one; then d, which went idle after c.
        d.idle();
        let _e = admit(&t, 5).unwrap();
        assert!(evicted(&c));
        let _f = admit(&t, 6).unwrap();
        assert!(evicted(&d));
        assert_eq!(t.stats().evicted_idle, 2);
        assert_eq!(t.open(), 3);
        // Everything busy: refused.
        _e.busy();
        _f.busy();
        assert_eq!(admit(&t, 7).err(), Some(Refused::Full));
        assert_eq!(t.stats().refused_full, 1);
        drop(a);
        assert!(admit(&t, 7).is_ok());
    }

    #[test]
    fn streams_have_their_own_budget_and_the_oldest_yields() {
        let t = table(2, 2, 8);
        let s: Vec<Slot> = (1..=2).map(|i| admit(&t, i).unwrap()).collect();
        for slot in &s {
            slot.busy();
            slot.streaming();
        }
        // Streams hold no place of the requests' budget.
        let a = admit(&t, 10).unwrap();
        let b = admit(&t, 11).unwrap();
        assert!(!evicted(&s[0]) && !evicted(&s[1]));
        // A third stream: the oldest one yields.
        a.busy();
        a.streaming();
        assert!(evicted(&s[0]) && !evicted(&s[1]) && !evicted(&b));
        assert_eq!(t.stats().evicted_streams, 1);
        assert_eq!(t.open(), 3);
        drop(s);
        assert_eq!(t.open(), 2);
    }

    #[test]
    fn a_client_at_its_limit_gives_up_its_own_oldest_connection() {
        let t = table(100, 100, 2);
        let a = admit(&t, 1).unwrap();
        let b = admit(&t, 1).unwrap();
        let other = admit(&t, 2).unwrap();
        let c = admit(&t, 1).unwrap();
        assert!(evicted(&a) && !evicted(&b) && !evicted(&other));
        b.busy();
        c.busy();
        assert_eq!(admit(&t, 1).err(), Some(Refused::PerClient));
        assert_eq!(t.stats().refused_per_client, 1);
        assert!(admit(&t, 3).is_ok());
    }

    #[test]
    fn a_connection_not_read_from_yet_does_not_yield_to_a_patient_newcomer() {
        let t = table(1, 8, 8);
        let unread = t.admit(ip(1), Arc::default(), true).unwrap();
        assert_eq!(admit(&t, 2).err(), Some(Refused::NotYet));
        assert_eq!(t.stats(), PolicyStats::default());
        // An impatient newcomer takes its place anyway.
        let impatient = t.admit(ip(3), Arc::default(), false).unwrap();
        assert!(evicted(&unread));
        // Once read from, a connection yields to a patient one.
        impatient.polled();
        let _patient = admit(&t, 2).unwrap();
        assert!(evicted(&impatient));
        assert_eq!(t.stats().evicted_idle, 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a.into()), client_of(b.into()));
        assert_ne!(client_of(a.into()), client_of(c.into()));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_of(mapped.into()),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
    }
}
