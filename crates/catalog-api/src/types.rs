use kernel::{Currency, Cursor, Limit, Money, ProductId, bounded_text};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub description: String,
    /// Category slug, e.g. `coffee`.
    pub category: String,
    pub price: Money,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One page of products; pass `next_cursor` back as `cursor` for the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub next_cursor: Option<String>,
}

/// Query string of `GET /api/v1/products`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Words to look for in name and description (case-insensitive).
    #[param(value_type = Option<SearchText>, inline)]
    pub q: Option<String>,
    /// Only this category.
    #[param(value_type = Option<Category>, inline)]
    pub category: Option<String>,
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<kernel::ProductCursor>, inline)]
    pub cursor: Option<String>,
}

/// `POST /api/v1/products` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductRequest {
    #[schema(value_type = ProductName)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Description)]
    pub description: String,
    #[schema(value_type = Category)]
    pub category: String,
    #[schema(value_type = Price)]
    pub price: Money,
}

/// `PATCH /api/v1/products/{id}` body; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchRequest {
    #[schema(value_type = Option<ProductName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<Description>)]
    pub description: Option<String>,
    #[schema(value_type = Option<Category>)]
    pub category: Option<String>,
    #[schema(value_type = Option<Price>)]
    pub price: Option<Money>,
}

/// A product's current name and price, as the cart and checkout need them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceQuote {
    pub product_id: ProductId,
    pub name: String,
    pub unit_price: Money,
}

/// A category slug: 1 to 40 of `a-z`, `0-9`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Category(String);

// The schema is made from the same rule as the parsing: one source.
impl utoipa::PartialSchema for Category {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let description = "A slug: 1 to 40 characters of a-z, 0-9 and -.";
        kernel::schema::bounded_string(1, Self::MAX_LEN, Some("^[a-z0-9-]+$"), None, description)
    }
}

impl utoipa::ToSchema for Category {}

impl Category {
    pub const MAX_LEN: usize = 40;

    pub fn parse(s: &str) -> Result<Category, CatalogError> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Category(s.to_owned()))
        } else {
            Err(CatalogError::InvalidInput(
                "category must be 1 to 40 characters of a-z, 0-9 and -".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The largest price accepted, in minor units: 1,000,000.00.
pub const MAX_PRICE: i64 = 100_000_000;
/// Longest product name, in characters as sent.
pub const NAME_MAX: usize = 200;
/// Longest description, in characters as sent.
pub const DESCRIPTION_MAX: usize = 2000;
/// Longest search text, in characters as sent.
pub const SEARCH_MAX: usize = 100;

// The schemas below are made from the same bounds as the parsing: one source. They name
// what a request may carry; the values stay plain in the Rust types.

/// A price a product may have: in USD, 1 to [`MAX_PRICE`] minor units.
pub struct Price;

impl utoipa::PartialSchema for Price {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let amount = kernel::schema::bounded_integer(
            1,
            MAX_PRICE as u64,
            None,
            "Minor units (cents): 1 to 100000000.",
        );
        let currency = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["USD"]))
            .description(Some("The shop sells in USD only."));
        ObjectBuilder::new()
            .property("amount", amount)
            .property("currency", currency)
            .required("amount")
            .required("currency")
            .description(Some("A product's price."))
            .into()
    }
}

impl utoipa::ToSchema for Price {}

/// A product name: 1 to [`NAME_MAX`] characters, no control characters.
pub struct ProductName;

impl utoipa::PartialSchema for ProductName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = kernel::schema::text_pattern();
        let about = "1 to 200 characters, not only white space, no control characters.";
        kernel::schema::bounded_string(1, NAME_MAX, Some(&pattern), None, about)
    }
}

impl utoipa::ToSchema for ProductName {}

/// A description: at most [`DESCRIPTION_MAX`] characters, lines and tabs allowed, no
/// other control characters.
pub struct Description;

impl utoipa::PartialSchema for Description {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$";
        let about =
            "At most 2000 characters; new lines and tabs allowed, no other control characters.";
        kernel::schema::bounded_string(0, DESCRIPTION_MAX, Some(pattern), None, about)
    }
}

impl utoipa::ToSchema for Description {}

/// Search text: at most [`SEARCH_MAX`] characters, no control characters; only white
/// space is no search.
pub struct SearchText;

impl utoipa::PartialSchema for SearchText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = format!("^[^{}]*$", kernel::schema::CONTROL_CHARACTERS);
        let about = "At most 100 characters, no control characters; only white space is no search.";
        kernel::schema::bounded_string(0, SEARCH_MAX, Some(&pattern), None, about)
    }
}

impl utoipa::ToSchema for SearchText {}

fn check_price(price: Money) -> Result<Money, CatalogError> {
    if price.currency != Currency::USD {
        return Err(CatalogError::InvalidInput("the shop sells in USD only".into()));
    }
    if !(1..=MAX_PRICE).contains(&price.amount) {
        return Err(CatalogError::InvalidInput(format!(
            "price amount must be between 1 and {MAX_PRICE} minor units"
        )));
    }
    Ok(price)
}

fn name(s: &str) -> Result<String, CatalogError> {
    Ok(bounded_text("name", s, 1, NAME_MAX)?)
}

fn description(s: &str) -> Result<String, CatalogError> {
    // Descriptions may be multi-line: allow newlines and tabs, nothing else below space.
    let t = s.trim();
    if s.chars().count() > DESCRIPTION_MAX {
        return Err(CatalogError::InvalidInput(
            "description must be at most 2000 characters".into(),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(CatalogError::InvalidInput(
            "description must not contain control characters".into(),
        ));
    }
    // One normal form, as for every other text (see `kernel::bounded_text`).
    Ok(kernel::nfc(t))
}

/// Validated input of `create`; checked again when it arrives over the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NewProductRequest", into = "NewProductRequest")]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: Category,
    pub price: Money,
}

impl NewProduct {
    pub fn parse(req: NewProductRequest) -> Result<NewProduct, CatalogError> {
        Ok(NewProduct {
            name: name(&req.name)?,
            description: description(&req.description)?,
            category: Category::parse(&req.category)?,
            price: check_price(req.price)?,
        })
    }
}

/// Validated input of `update`; checked again when it arrives over the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProductPatchRequest", into = "ProductPatchRequest")]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<Category>,
    pub price: Option<Money>,
}

impl ProductPatch {
    pub fn parse(req: ProductPatchRequest) -> Result<ProductPatch, CatalogError> {
        Ok(ProductPatch {
            name: req.name.as_deref().map(name).transpose()?,
            description: req.description.as_deref().map(description).transpose()?,
            category: req.category.as_deref().map(Category::parse).transpose()?,
            price: req.price.map(check_price).transpose()?,
        })
    }

    pub fn apply(&self, p: &mut Product) {
        if let Some(v) = &self.name {
            p.name.clone_from(v);
        }
        if let Some(v) = &self.description {
            p.description.clone_from(v);
        }
        if let Some(v) = &self.category {
            p.category = v.as_str().to_owned();
        }
        if let Some(v) = self.price {
            p.price = v;
        }
    }
}

/// Validated input of `list`; checked again when it arrives over the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ListParams", into = "ListParams")]
pub struct ProductQuery {
    /// Lowercased search text.
    pub text: Option<String>,
    pub category: Option<Category>,
    pub limit: Limit,
    /// The last product of the previous page.
    pub after: Option<ProductId>,
}

impl ProductQuery {
    pub fn parse(p: ListParams) -> Result<ProductQuery, CatalogError> {
        // Only white space is no search; control characters are refused even there.
        let text = match p.q.as_deref() {
            None => None,
            Some(q) => Some(bounded_text("q", q, 0, SEARCH_MAX)?).filter(|t| !t.is_empty()),
        };
        let text = text.map(|t| t.to_lowercase());
        let category = p.category.as_deref().map(Category::parse).transpose()?;
        let (limit, after) = kernel::page_params(p.limit.as_deref(), p.cursor.as_deref())
            .map_err(|m| CatalogError::InvalidInput(m.into()))?;
        Ok(ProductQuery { text, category, limit, after })
    }
}

impl TryFrom<NewProductRequest> for NewProduct {
    type Error = CatalogError;
    fn try_from(req: NewProductRequest) -> Result<NewProduct, CatalogError> {
        NewProduct::parse(req)
    }
}

impl From<NewProduct> for NewProductRequest {
    fn from(p: NewProduct) -> NewProductRequest {
        NewProductRequest {
            name: p.name,
            description: p.description,
            category: p.category.0,
            price: p.price,
        }
    }
}

impl TryFrom<ProductPatchRequest> for ProductPatch {
    type Error = CatalogError;
    fn try_from(req: ProductPatchRequest) -> Result<ProductPatch, CatalogError> {
        ProductPatch::parse(req)
    }
}

impl From<ProductPatch> for ProductPatchRequest {
    fn from(p: ProductPatch) -> ProductPatchRequest {
        ProductPatchRequest {
            name: p.name,
            description: p.description,
            category: p.category.map(|c| c.0),
            price: p.price,
        }
    }
}

impl TryFrom<ListParams> for ProductQuery {
    type Error = CatalogError;
    fn try_from(p: ListParams) -> Result<ProductQuery, CatalogError> {
        ProductQuery::parse(p)
    }
}

impl From<ProductQuery> for ListParams {
    fn from(q: ProductQuery) -> ListParams {
        ListParams {
            q: q.text,
            category: q.category.map(|c| c.0),
            limit: Some(q.limit.get().to_string()),
            cursor: q.after.as_ref().map(Cursor::encode),
        }
    }
}
