//! The modules of the shop and what each declares about itself: its jobs, its bus
//! consumer, its internal routes, and the call graph between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The modules of the shop, in the order they are built (each after those it calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    Identity,
    Catalog,
    Inventory,
    Cart,
    Orders,
    Payments,
    Notifications,
}

impl Module {
    pub const ALL: [Module; 7] = [
        Module::Identity,
        Module::Catalog,
        Module::Inventory,
        Module::Cart,
        Module::Orders,
        Module::Payments,
        Module::Notifications,
    ];

    /// The contract calls each module's implementation makes (the clients `wiring` hands
    /// it), as `(caller, callee, methods)`: the call graph. A call outside it is refused by
    /// the callee, unless it comes from the public edge, which calls every module for its
    /// users.
    pub const CALLS: &'static [(Module, Module, &'static [&'static str])] = &[
        (Module::Inventory, Module::Catalog, &["get"]),
        (Module::Cart, Module::Catalog, &["get", "quote"]),
        (Module::Orders, Module::Cart, &["get"]),
    ];

    /// The modules whose contracts this one calls (events aside), from [`Module::CALLS`].
    pub fn calls(self) -> Vec<Module> {
        Module::CALLS.iter().filter(|(from, ..)| *from == self).map(|(_, to, _)| *to).collect()
    }

    /// The names of the jobs it runs on a schedule ([`bus::Job`]), as the module declares
    /// them.
    pub fn jobs(self) -> &'static [&'static str] {
        match self {
            Module::Orders => orders::JOBS,
            _ => &[],
        }
    }

    /// Its bus consumer, as the module declares it: the consumer's name and the event
    /// types it subscribes to; `None` for a module that handles no events.
    pub fn consumer(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Module::Cart => Some((cart::CONSUMER, cart::SUBSCRIBES)),
            Module::Inventory => Some((inventory::CONSUMER, inventory::SUBSCRIBES)),
            Module::Orders => Some((orders::CONSUMER, orders::SUBSCRIBES)),
            Module::Payments => Some((payments::CONSUMER, payments::SUBSCRIBES)),
            Module::Notifications => Some((notifications::CONSUMER, notifications::SUBSCRIBES)),
            Module::Identity | Module::Catalog => None,
        }
    }

    /// The paths of its internal routes (`/internal/<module>/<method>`), as its contract
    /// declares them.
    pub fn internal_paths(self) -> &'static [&'static str] {
        match self {
            Module::Identity => identity_api::IdentityClient::INTERNAL_PATHS,
            Module::Catalog => catalog_api::CatalogClient::INTERNAL_PATHS,
            Module::Inventory => inventory_api::InventoryClient::INTERNAL_PATHS,
            Module::Cart => cart_api::CartClient::INTERNAL_PATHS,
            Module::Orders => orders_api::OrdersClient::INTERNAL_PATHS,
            Module::Payments => payments_api::PaymentsClient::INTERNAL_PATHS,
            Module::Notifications => notifications_api::NotificationsClient::INTERNAL_PATHS,
        }
    }

    /// Whether it subscribes to bus events.
    pub fn handles_events(self) -> bool {
        self.consumer().is_some()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Module::Identity => "identity",
            Module::Catalog => "catalog",
            Module::Inventory => "inventory",
            Module::Cart => "cart",
            Module::Orders => "orders",
            Module::Payments => "payments",
            Module::Notifications => "notifications",
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
