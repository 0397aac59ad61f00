//! The catalog module: owns products, their categories and prices, and implements
//! [`catalog_api::CatalogService`] over its own database.

mod service;

pub use service::Catalog;
