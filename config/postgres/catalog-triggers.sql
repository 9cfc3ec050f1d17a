-- Example triggers for a catalog schema: products, categories, product <-> category links, prices
-- and inventory. Each maps a row change, old and new values both, to the tags the demo origin
-- (and most catalog APIs) put on what they serve:
--   product:ID            the product page
--   category:ID           the category's own data
--   listing:category:ID   the category's listing pages (order and membership)
--   categories            the category list
-- Install after vitrine.sql. Idempotent. Assumes these tables exist (see the demo schema in
-- README "Postgres change feed"); drop the parts your schema does not have.

CREATE OR REPLACE FUNCTION vitrine_products_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tags text[] := '{}';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        tags := tags || ARRAY['product:' || OLD.id, 'listing:category:' || OLD.category_id];
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        tags := tags || ARRAY['product:' || NEW.id, 'listing:category:' || NEW.category_id];
    END IF;
    IF TG_OP <> 'UPDATE' OR OLD.category_id IS DISTINCT FROM NEW.category_id THEN
        -- Membership changed: product counts in the category list change too.
        tags := tags || ARRAY['categories'];
    END IF;
    PERFORM vitrine_invalidate(ARRAY(SELECT DISTINCT unnest(tags)));
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_products_changed ON products;
CREATE TRIGGER vitrine_products_changed
    AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION vitrine_products_changed();

CREATE OR REPLACE FUNCTION vitrine_categories_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM vitrine_invalidate(ARRAY['category:' || id, 'listing:category:' || id, 'categories']);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_categories_changed ON categories;
CREATE TRIGGER vitrine_categories_changed
    AFTER INSERT OR UPDATE OR DELETE ON categories
    FOR EACH ROW EXECUTE FUNCTION vitrine_categories_changed();

-- Product <-> category links (a product in several collections).
CREATE OR REPLACE FUNCTION vitrine_product_categories_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tags text[] := '{}';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        tags := tags || ARRAY['product:' || OLD.product_id, 'listing:category:' || OLD.category_id];
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        tags := tags || ARRAY['product:' || NEW.product_id, 'listing:category:' || NEW.category_id];
    END IF;
    PERFORM vitrine_invalidate(ARRAY(SELECT DISTINCT unnest(tags || ARRAY['categories'])));
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_product_categories_changed ON product_categories;
CREATE TRIGGER vitrine_product_categories_changed
    AFTER INSERT OR UPDATE OR DELETE ON product_categories
    FOR EACH ROW EXECUTE FUNCTION vitrine_product_categories_changed();

-- Prices and inventory kept apart from products (price lists, warehouses): a change shows on the
-- product page and in every listing that sorts or filters by it.
CREATE OR REPLACE FUNCTION vitrine_product_detail_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    product bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.product_id ELSE NEW.product_id END;
    tags text[];
BEGIN
    SELECT ARRAY['product:' || product] || coalesce(array_agg('listing:category:' || c.category_id), '{}')
      INTO tags
      FROM (SELECT category_id FROM products WHERE id = product
            UNION SELECT category_id FROM product_categories WHERE product_id = product) AS c;
    PERFORM vitrine_invalidate(tags);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_prices_changed ON prices;
CREATE TRIGGER vitrine_prices_changed
    AFTER INSERT OR UPDATE OR DELETE ON prices
    FOR EACH ROW EXECUTE FUNCTION vitrine_product_detail_changed();

DROP TRIGGER IF EXISTS vitrine_inventory_changed ON inventory;
CREATE TRIGGER vitrine_inventory_changed
    AFTER INSERT OR UPDATE OR DELETE ON inventory
    FOR EACH ROW EXECUTE FUNCTION vitrine_product_detail_changed();
