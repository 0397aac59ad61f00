use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kernel::UserId;

use crate::RateQuota;

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    User(UserId),
    Address(Option<IpAddr>),
}

/// Token buckets per user (authenticated requests) and per client address (the rest).
/// A user's burst never spends another user's budget, even behind one address.
pub(crate) struct Limiter {
    users: DefaultKeyedRateLimiter<UserId>,
    addresses: DefaultKeyedRateLimiter<Option<IpAddr>>,
    clock: DefaultClock,
}

fn quota(q: RateQuota) -> Quota {
    Quota::per_second(q.per_second).allow_burst(q.burst)
}

impl Limiter {
    pub(crate) fn new(per_user: RateQuota, per_address: RateQuota) -> Arc<Limiter> {
        let limiter = Arc::new(Limiter {
            users: RateLimiter::keyed(quota(per_user)),
            addresses: RateLimiter::keyed(quota(per_address)),
            clock: DefaultClock::default(),
        });
        // Forget idle keys now and then, or every address ever seen stays in memory.
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(l) = weak.upgrade() else { break };
                l.users.retain_recent();
                l.addresses.retain_recent();
            }
        });
        limiter
    }

    /// `Err(wait)` when the caller is over quota.
    pub(crate) fn check(&self, caller: Caller) -> Result<(), Duration> {
        let outcome = match caller {
            Caller::User(id) => self.users.check_key(&id),
            Caller::Address(ip) => self.addresses.check_key(&ip),
        };
        outcome.map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
