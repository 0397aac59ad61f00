//! [`Audit`]: reading the shop's databases and bus directly, to check what a scenario left
//! behind (rows, outboxes, deliveries) rather than only what the API answers.

use futures::StreamExt as _;
use runtime::{BusKind, Database};
use sqlx::Row as _;

/// Reads module databases directly, as an auditor would, to check what the public API
/// cannot show: units sold, charges the card provider made, events the bus stored.
pub struct Audit {
    identity: store::Db,
    orders: store::Db,
    payments: store::Db,
    inventory: store::Db,
    provider: store::Db,
    bus: BusView,
}

/// Where the audit reads the bus's state.
enum BusView {
    Embedded(store::Db),
    Nats { js: async_nats::jetstream::Context, ns: String },
}

impl BusView {
    /// The namespace's event streams, each with its consumers' names.
    async fn nats_streams(
        js: &async_nats::jetstream::Context,
        ns: &str,
    ) -> Vec<(async_nats::jetstream::stream::Stream, Vec<String>)> {
        let prefix = format!("{}_", ns.to_uppercase());
        let names: Vec<String> = js.stream_names().filter_map(async |n| n.ok()).collect().await;
        let mut out = Vec::new();
        for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
            let stream = js.get_stream(&name).await.expect("stream");
            let consumers: Vec<String> =
                stream.consumer_names().filter_map(async |n| n.ok()).collect().await;
            out.push((stream, consumers));
        }
        out
    }
}

/// One product's stock row: `available + reserved + sold = adjusted` must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockRow {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    /// The sum of every restock.
    pub adjusted: i64,
}

impl Audit {
    /// The databases of a shop whose modules use `database` and whose bus is `bus` (with its
    /// namespace), with its data directory.
    pub async fn open(
        database: &Database,
        bus: &(BusKind, String),
        data_dir: &std::path::Path,
    ) -> Audit {
        let open = async |name: &'static str| runtime::open_db(database, data_dir, name).await;
        Audit {
            identity: open("identity").await.expect("identity db"),
            orders: open("orders").await.expect("orders db"),
            payments: open("payments").await.expect("payments db"),
            inventory: open("inventory").await.expect("inventory db"),
            provider: open(runtime::plan::PROVIDER_DATABASE).await.expect("provider db"),
            bus: match &bus.0 {
                // The embedded broker is a SQLite file whatever the modules use.
                BusKind::Embedded => BusView::Embedded(
                    runtime::open_db(&Database::Sqlite, data_dir, runtime::plan::BUS_DATABASE)
                        .await
                        .expect("bus db"),
                ),
                BusKind::Nats(url) => BusView::Nats {
                    js: async_nats::jetstream::new(
                        async_nats::connect(url).await.expect("nats connects"),
                    ),
                    ns: bus.1.clone(),
                },
            },
        }
    }

    pub async fn stock(&self, product: &str) -> StockRow {
        let row = sqlx::query(
            "SELECT available, reserved, sold, adjusted FROM stock WHERE product_id = $1",
        )
        .bind(product)
        .fetch_one(self.inventory.pool())
        .await
        .expect("stock row");
        StockRow {
            available: row.get("available"),
            reserved: row.get("reserved"),
            sold: row.get("sold"),
            adjusted: row.get("adjusted"),
        }
    }

    /// Every order's id and status (`cancelled:<reason>` for a cancelled one).
    pub async fn orders(&self) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT id, CASE WHEN status = 'cancelled' THEN 'cancelled:' || cancel_reason \
             ELSE status END AS status FROM orders ORDER BY id",
        )
        .fetch_all(self.orders.pool())
        .await
        .expect("orders")
        .iter()
        .map(|r| (r.get("id"), r.get("status")))
        .collect()
    }

    /// Units of `product` in confirmed orders: what inventory must have sold.
    pub async fn confirmed_units(&self, product: &str) -> i64 {
        sqlx::query(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) AS n FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE o.status = 'confirmed' AND i.product_id = $1",
        )
        .bind(product)
        .fetch_one(self.orders.pool())
        .await
        .expect("confirmed units")
        .get("n")
    }

    /// Successful charges the card provider made for `order`.
    pub async fn captures(&self, order: &str) -> i64 {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges WHERE order_ref = $1 AND outcome = 'succeeded'",
        )
        .bind(order)
        .fetch_one(self.provider.pool())
        .await
        .expect("provider charges")
        .get("n")
    }

    /// What payments recorded for `order`: its status, if it recorded anything. A payments
    /// module that never started (a function never invoked) has no table yet: nothing.
    pub async fn payment(&self, order: &str) -> Option<String> {
        match sqlx::query("SELECT status FROM payments WHERE order_id = $1")
            .bind(order)
            .fetch_optional(self.payments.pool())
            .await
        {
            Ok(row) => row.map(|r| r.get("status")),
            Err(e) if is_missing_table(&e) => None,
            Err(e) => panic!("payments: {e}"),
        }
    }

    /// Successful charges for `order` that the card provider gave back.
    pub async fn refunds(&self, order: &str) -> i64 {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges \
             WHERE order_ref = $1 AND outcome = 'succeeded' AND refunded_at IS NOT NULL",
        )
        .bind(order)
        .fetch_one(self.provider.pool())
        .await
        .expect("provider refunds")
        .get("n")
    }

    /// Every (subscriber, event id) the bus owes or owed a delivery of.
    pub async fn deliveries(&self) -> Vec<(String, String)> {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query(
                "SELECT s.subscriber, m.id FROM bus_messages m \
                 JOIN bus_subscriptions s ON s.event_type = m.event_type ORDER BY m.id",
            )
            .fetch_all(db.pool())
            .await
            .expect("bus messages")
            .iter()
            .map(|r| (r.get("subscriber"), r.get("id")))
            .collect(),
            // Events are stored on `ns.ev.<domain>.<event>.<id>`; each subscriber has a
            // consumer `<subscriber>__<domain>_<event>`.
            BusView::Nats { js, ns } => {
                let mut out = Vec::new();
                for (stream, consumers) in BusView::nats_streams(js, ns).await {
                    let subjects: Vec<String> = stream
                        .info_with_subjects(format!("{ns}.ev.>"))
                        .await
                        .expect("subjects")
                        .filter_map(async |r| r.ok().map(|(s, _)| s))
                        .collect()
                        .await;
                    for subject in subjects {
                        let parts: Vec<&str> = subject.split('.').collect();
                        let [_, "ev", domain, event, id] = parts[..] else { continue };
                        let suffix = format!("__{domain}_{event}");
                        for c in &consumers {
                            if let Some(subscriber) = c.strip_suffix(&suffix) {
                                out.push((subscriber.to_owned(), id.to_owned()));
                            }
                        }
                    }
                }
                out.sort();
                out
            }
        }
    }

    /// Waits (at most 10 s) until the bus owes no delivery; dead letters are not owed.
    pub async fn await_drained(&self) {
        for _ in 0..400 {
            if self.backlog().await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the bus did not drain within 10 s");
    }

    /// Every dead letter, as `subscriber event_type: last error` (the subject on NATS).
    pub async fn dead_letters(&self) -> Vec<String> {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query(
                "SELECT d.subscriber, m.event_type, d.last_error FROM bus_dead_letters d \
                 JOIN bus_messages m ON m.id = d.event_id ORDER BY d.dead_at",
            )
            .fetch_all(db.pool())
            .await
            .expect("dead letters")
            .iter()
            .map(|r| {
                let (s, t, e): (String, String, String) =
                    (r.get("subscriber"), r.get("event_type"), r.get("last_error"));
                format!("{s} {t}: {e}")
            })
            .collect(),
            BusView::Nats { js, ns } => {
                let Ok(stream) = js.get_stream(format!("{}_DLQ", ns.to_uppercase())).await else {
                    return Vec::new(); // no dead letter was ever written
                };
                stream
                    .info_with_subjects(format!("{ns}.dlq.>"))
                    .await
                    .expect("dead-letter subjects")
                    .filter_map(async |r| r.ok().map(|(s, _)| s))
                    .collect()
                    .await
            }
        }
    }

    /// Events still owed: written to a module's outbox and not yet published, or published
    /// and not yet handled by every subscriber (0 once the saga has settled).
    pub async fn backlog(&self) -> i64 {
        let mut unsent = 0;
        for db in [&self.identity, &self.inventory, &self.orders, &self.payments] {
            let query = sqlx::query("SELECT COUNT(*) AS n FROM bus_outbox WHERE sent_at IS NULL");
            match query.fetch_one(db.pool()).await {
                Ok(row) => unsent += row.get::<i64, _>("n"),
                // A module that never ran (a function never invoked) has no outbox yet.
                Err(e) if is_missing_table(&e) => {}
                Err(e) => panic!("outbox: {e}"),
            }
        }
        unsent + self.undelivered().await
    }

    /// Deliveries the bus still owes.
    async fn undelivered(&self) -> i64 {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query("SELECT COUNT(*) AS n FROM bus_deliveries")
                .fetch_one(db.pool())
                .await
                .expect("bus deliveries")
                .get("n"),
            BusView::Nats { js, ns } => {
                let mut owed = 0;
                for (stream, consumers) in BusView::nats_streams(js, ns).await {
                    for c in consumers {
                        let info = stream.consumer_info(&c).await.expect("consumer info");
                        owed += info.num_pending as i64 + info.num_ack_pending as i64;
                    }
                }
                owed
            }
        }
    }

    pub async fn close(self) {
        self.identity.close().await;
        self.orders.close().await;
        self.payments.close().await;
        self.inventory.close().await;
        self.provider.close().await;
        if let BusView::Embedded(db) = self.bus {
            db.close().await;
        }
    }
}

/// SQLite's "no such table" or PostgreSQL's `undefined_table` (42P01).
fn is_missing_table(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("42P01") || d.message().contains("no such table")
    })
}
