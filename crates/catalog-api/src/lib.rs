//! The catalog module's contract: [`CatalogService`] (list and search with cursor paging,
//! get, admin create/update, price quotes), its wire types, error and events, the
//! [`CatalogClient`] handle, the public HTTP adapter ([`http::router`]) and, with the `mock`
//! feature, an in-memory fake for the tests of modules that depend on catalog.

mod client;
mod error;
pub mod events;
pub mod http;
#[cfg(feature = "mock")]
mod mock;
mod types;

pub use client::{CatalogClient, CatalogService};
pub use error::CatalogError;
#[cfg(feature = "mock")]
pub use mock::MockCatalog;
pub use types::{
    Category, ListParams, NewProduct, NewProductRequest, PriceQuote, Product, ProductPage,
    ProductPatch, ProductPatchRequest, ProductQuery,
};
