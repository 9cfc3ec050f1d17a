-- The sample catalog schema the example triggers expect, and the one `vitrine demo --postgres`
-- creates and seeds (its product pages read `products`; `prices` and `inventory` show how
-- price lists and warehouses kept apart are wired to the same tags).
CREATE TABLE IF NOT EXISTS categories (
    id   bigint PRIMARY KEY,
    name text   NOT NULL
);

CREATE TABLE IF NOT EXISTS products (
    id          bigint PRIMARY KEY,
    name        text   NOT NULL,
    description text   NOT NULL DEFAULT '',
    price_cents bigint NOT NULL,
    stock       int    NOT NULL DEFAULT 0,
    category_id bigint NOT NULL REFERENCES categories (id),
    brand       text   NOT NULL DEFAULT '',
    rating      double precision NOT NULL DEFAULT 0,
    color       text   NOT NULL DEFAULT '',
    material    text   NOT NULL DEFAULT ''
);

CREATE INDEX IF NOT EXISTS products_category_id ON products (category_id);

CREATE TABLE IF NOT EXISTS product_categories (
    product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category_id bigint NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    PRIMARY KEY (product_id, category_id)
);

CREATE TABLE IF NOT EXISTS prices (
    product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    price_list  text   NOT NULL DEFAULT 'default',
    price_cents bigint NOT NULL,
    PRIMARY KEY (product_id, price_list)
);

CREATE TABLE IF NOT EXISTS inventory (
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    warehouse  text   NOT NULL DEFAULT 'main',
    stock      int    NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id, warehouse)
);
