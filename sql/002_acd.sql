-- Inbound queueing: configuration declared over the API (or a TOML file), and the engine's
-- runtime snapshot so waiting callers keep their order across an app restart.

CREATE TABLE acd_queues (
    name        text PRIMARY KEY,
    config      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE acd_agents (
    id          text PRIMARY KEY,
    config      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per app instance name: the engine snapshot plus the adapter's map of items and offers to
-- Asterisk channel and bridge ids. Written through the batched writer (merged: one write per batch).
CREATE TABLE acd_state (
    id          text PRIMARY KEY,
    snapshot    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
