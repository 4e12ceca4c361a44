//! Deliveries this instance accepted lately, by message id: a delivery
//! seen again (a sender's retry, or a captured request replayed) is
//! answered as the duplicate it is before it is counted against the
//! tenant's rate limit or reaches the database. Without this, one signed
//! request of a scheme with no timestamp (`X-ServiceDesk-Signature`,
//! `X-Hub-Signature`, Autotask's, ConnectWise's), replayed a hundred times
//! a minute, used up the tenant's limit and its real webhooks were refused.
//!
//! Bounded in time (the stream's duplicate window, after which the intake
//! claim still answers) and in size (the oldest forgotten first).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How long a delivery is remembered: the stream's duplicate window.
pub const KEPT: Duration = Duration::from_secs(600);

/// How many deliveries are remembered at most (about 100 bytes each).
pub const MOST: usize = 100_000;

#[derive(Debug)]
pub struct RecentDeliveries {
    kept: Duration,
    most: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, (Uuid, Instant)>,
    /// In the order remembered, to forget the oldest.
    order: VecDeque<(String, Instant)>,
}

impl Default for RecentDeliveries {
    fn default() -> Self {
        Self::new(KEPT, MOST)
    }
}

impl RecentDeliveries {
    pub fn new(kept: Duration, most: usize) -> Self {
        Self {
            kept,
            most: most.max(1),
            inner: Mutex::default(),
        }
    }

    /// The event a delivery under `msg_id` was accepted as, if it was
    /// within [`KEPT`].
    pub fn accepted(&self, msg_id: &str, now: Instant) -> Option<Uuid> {
        let inner = self.inner.lock().expect("recent deliveries");
        inner
            .by_id
            .get(msg_id)
            .filter(|(_, at)| now.duration_since(*at) < self.kept)
            .map(|(event_id, _)| *event_id)
    }

    /// Remembers that `msg_id` was accepted as `event_id`.
    pub fn remember(&self, msg_id: &str, event_id: Uuid, now: Instant) {
        let mut inner = self.inner.lock().expect("recent deliveries");
        // Forget what is past its time, and the oldest beyond the bound.
        while let Some((oldest, at)) = inner.order.front().cloned() {
            let expired = now.duration_since(at) >= self.kept;
            if !expired && inner.order.len() < self.most {
                break;
            }
            inner.order.pop_front();
            // Only if not remembered again since.
            if inner
                .by_id
                .get(&oldest)
                .is_some_and(|(_, seen)| *seen == at)
            {
                inner.by_id.remove(&oldest);
            }
        }
        inner.by_id.insert(msg_id.to_owned(), (event_id, now));
        inner.order.push_back((msg_id.to_owned(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_remembered_for_its_time_and_the_oldest_go_first() {
        let recent = RecentDeliveries::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        recent.remember("a", a, start);
        assert_eq!(
            recent.accepted("a", start + Duration::from_secs(59)),
            Some(a)
        );
        assert_eq!(recent.accepted("a", start + Duration::from_secs(60)), None);
        assert_eq!(recent.accepted("unknown", start), None);
        recent.remember("b", b, start + Duration::from_secs(1));
        recent.remember("c", c, start + Duration::from_secs(2));
        // At most two: "a" went first.
        assert_eq!(recent.accepted("a", start + Duration::from_secs(3)), None);
        assert_eq!(
            recent.accepted("b", start + Duration::from_secs(3)),
            Some(b)
        );
        assert_eq!(
            recent.accepted("c", start + Duration::from_secs(3)),
            Some(c)
        );
    }

    #[test]
    fn remembering_again_keeps_the_later_time() {
        let recent = RecentDeliveries::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        let id = Uuid::now_v7();
        recent.remember("a", id, start);
        recent.remember("a", id, start + Duration::from_secs(50));
        // Its first entry expiring does not forget the second.
        recent.remember("b", Uuid::now_v7(), start + Duration::from_secs(70));
        assert_eq!(
            recent.accepted("a", start + Duration::from_secs(100)),
            Some(id)
        );
    }
}
