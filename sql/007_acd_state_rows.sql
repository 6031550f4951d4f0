-- The ACD's runtime state as one row per record instead of one snapshot row per app instance, so
-- a persist rewrites only what changed since the last one (a caller arriving: its item, its queue's
-- counters and the engine's scalars), not the whole state (4.8 MB at 10,000 callers waiting).
--
-- kind: engine (key ''; counters, random state, clock) | queue (name) | agent (id) |
--       item (item id; the engine's record and the adapter's link to channels and bridge) |
--       offer (offer id; likewise, the link outliving the engine's offer while the call is up).
-- Written through the batched writer as row sets: the rows of one persist land in one transaction.
--
-- Upgrade: acd_state stays. An instance that finds no rows of its own here but an acd_state
-- snapshot restores from that snapshot once, writes it as rows and deletes it, in one
-- transaction (ari_app/service.py `_load_acd`). The snapshot's JSON is not converted here: its
-- timers are one list for the whole engine, which only the engine's loader splits into records.
CREATE TABLE acd_state_rows (
    app         text NOT NULL,
    kind        text NOT NULL,
    key         text NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, kind, key)
);
