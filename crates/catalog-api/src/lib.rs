//! The catalog module's contract: [`CatalogService`] (list and search with cursor paging,
//! get, admin create/update, price quotes), its wire types, error and events, the
//! [`CatalogClient`] handle, the public HTTP adapter ([`http::router`]) and, with the `mock`
//! feature, a mockall mock and an in-memory fake for the tests of modules that depend on catalog.

mod contract;
mod error;
pub mod events;
#[cfg(feature = "mock")]
mod fake;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockCatalogService;
pub use contract::{CatalogClient, CatalogRemote, CatalogService, internal_routes};
pub use error::CatalogError;
#[cfg(feature = "mock")]
pub use fake::FakeCatalog;
pub use types::{
    Category, ListParams, NewProduct, NewProductRequest, PriceQuote, Product, ProductPage,
    ProductPatch, ProductPatchRequest, ProductQuery,
};
