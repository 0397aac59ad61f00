//! Composition: the only library crate that names module implementation crates (besides
//! the test kit). It reads the topology, opens each module's own database, loads the token
//! signing key from its file, builds every module with the clients of the modules it
//! depends on, seeds a first start, and puts the gateway in front.
//!
//! Today there is one placement, `monolith`: every client is the local implementation.
//! Remote and function placements plug in here without touching a module or a caller.

mod keys;
mod seed;
mod shop;
mod topology;

pub use keys::load_or_create_signing_key;
pub use seed::{DEMO_PRODUCTS, seed_demo_catalog};
pub use shop::{AdminCredentials, Shop, ShopConfig};
pub use topology::Topology;
