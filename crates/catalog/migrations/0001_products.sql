-- name_lower / description_lower are lowercased in Rust: SQLite's LOWER() only folds ASCII,
-- and keeping the folded copy makes search behave the same on SQLite and PostgreSQL.
CREATE TABLE products (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    name_lower        TEXT NOT NULL,
    description       TEXT NOT NULL,
    description_lower TEXT NOT NULL,
    category          TEXT NOT NULL,
    price_amount      BIGINT NOT NULL,
    price_currency    TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE INDEX products_by_category ON products (category, id);
