-- Vitrine's change feed: what an origin database installs (Postgres 13 or later). Idempotent:
-- run it again at will, and after upgrading Vitrine.
--
--   psql "$DATABASE_URL" -f config/postgres/vitrine.sql
--
-- A change calls vitrine_invalidate(tags) in its own transaction: the tags land in the outbox
-- and a notification wakes the proxies, both at commit (NOTIFY is transactional), never before.
-- The notification is only a wake-up: proxies read the outbox after their cursor, so nothing is
-- lost while one is disconnected or restarting.
--
-- Rows become visible in commit order, not in id order: a transaction that took id 10 may commit
-- after one that took id 11. Each row therefore records its writing transaction (`xid`), and
-- proxies read in (xid, id) order, moving their saved cursor only past transactions that have
-- ended (see Sources/VitrineFeed/OutboxCursor.swift).

CREATE TABLE IF NOT EXISTS vitrine_outbox (
    id         bigserial   PRIMARY KEY,
    tags       text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- Outboxes installed by an older version: the rows they hold count as written by this upgrade.
ALTER TABLE vitrine_outbox ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX IF NOT EXISTS vitrine_outbox_created_at ON vitrine_outbox (created_at);
CREATE INDEX IF NOT EXISTS vitrine_outbox_xid_id ON vitrine_outbox (xid, id);

-- The outbox's identity, which every saved cursor carries: one row per outbox table (its oid),
-- with a generation made when the row is. A cursor saved against another database, cluster or
-- outbox table is discarded by the proxy (which then purges everything). `pruned_xid, pruned_id`
-- is the last (xid, id) position deleted from the outbox: a cursor before it has lost purges.
CREATE TABLE IF NOT EXISTS vitrine_outbox_identity (
    outbox     oid         PRIMARY KEY,
    generation uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    pruned_xid xid8        NOT NULL DEFAULT '0',
    pruned_id  bigint      NOT NULL DEFAULT 0
);
INSERT INTO vitrine_outbox_identity (outbox) VALUES ('vitrine_outbox'::regclass::oid) ON CONFLICT DO NOTHING;

-- Deleted rows, however deleted (vitrine_prune_outbox, a DELETE by hand), move the watermark.
CREATE OR REPLACE FUNCTION vitrine_outbox_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_xid xid8;
    last_id bigint;
BEGIN
    SELECT xid, id INTO last_xid, last_id FROM deleted_rows ORDER BY xid DESC, id DESC LIMIT 1;
    IF last_id IS NOT NULL THEN
        UPDATE vitrine_outbox_identity SET (pruned_xid, pruned_id) = (last_xid, last_id)
         WHERE outbox = 'vitrine_outbox'::regclass::oid AND (pruned_xid, pruned_id) < (last_xid, last_id);
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_outbox_deleted ON vitrine_outbox;
CREATE TRIGGER vitrine_outbox_deleted AFTER DELETE ON vitrine_outbox
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION vitrine_outbox_deleted();

-- TRUNCATE removes every row written so far: the watermark moves past all of them.
CREATE OR REPLACE FUNCTION vitrine_outbox_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vitrine_outbox_identity SET (pruned_xid, pruned_id) = (pg_current_xact_id(), 9223372036854775807)
     WHERE outbox = 'vitrine_outbox'::regclass::oid;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS vitrine_outbox_truncated ON vitrine_outbox;
CREATE TRIGGER vitrine_outbox_truncated AFTER TRUNCATE ON vitrine_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION vitrine_outbox_truncated();

-- Records `tags` for purging and wakes the listeners on the channel (default
-- 'vitrine_invalidations'; set `vitrine.channel` to use another). Returns the outbox id.
CREATE OR REPLACE FUNCTION vitrine_invalidate(tags text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    row_id bigint;
    channel text := coalesce(nullif(current_setting('vitrine.channel', true), ''), 'vitrine_invalidations');
BEGIN
    IF tags IS NULL OR cardinality(tags) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO vitrine_outbox (tags) VALUES (tags) RETURNING id INTO row_id;
    PERFORM pg_notify(channel, row_id::text);
    RETURN row_id;
END;
$$;

-- Deletes outbox rows older than `keep`; a proxy whose cursor is older than what remains
-- purges everything (and says so loudly) instead of serving stale data.
CREATE OR REPLACE FUNCTION vitrine_prune_outbox(keep interval DEFAULT interval '7 days') RETURNS bigint
LANGUAGE sql AS $$
    WITH deleted AS (DELETE FROM vitrine_outbox WHERE created_at < now() - keep RETURNING 1)
    SELECT count(*) FROM deleted;
$$;
