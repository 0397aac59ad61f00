//! The catalog contract over HTTP/JSON: [`CatalogRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{Page, ProductId};

use crate::{
    CatalogClient, CatalogError, CatalogService, NewProduct, PriceQuote, Product, ProductPatch,
    ProductQuery,
};

rpc::remote_contract! {
    module: "catalog",
    service: CatalogService,
    client: CatalogClient,
    error: CatalogError,
    remote: CatalogRemote,
    methods: {
        #[idempotent]
        fn list(query: ProductQuery) -> Page<Product>;
        #[idempotent]
        fn get(id: ProductId) -> Product;
        fn create(product: NewProduct) -> Product;
        fn update(id: ProductId, patch: ProductPatch) -> Product;
        #[idempotent]
        fn quote(ids: Vec<ProductId>) -> Vec<PriceQuote>;
    }
}
