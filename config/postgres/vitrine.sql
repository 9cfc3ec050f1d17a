-- Vitrine's change feed: what an origin database installs. Idempotent: run it again at will.
--
--   psql "$DATABASE_URL" -f config/postgres/vitrine.sql
--
-- A change calls vitrine_invalidate(tags) in its own transaction: the tags land in the outbox
-- and a notification wakes the proxies, both at commit (NOTIFY is transactional), never before.
-- The notification is only a wake-up: proxies read the outbox after their cursor, so nothing is
-- lost while one is disconnected or restarting.

CREATE TABLE IF NOT EXISTS vitrine_outbox (
    id         bigserial   PRIMARY KEY,
    tags       text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS vitrine_outbox_created_at ON vitrine_outbox (created_at);

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
