-- Agents' dialer sessions (a persistent bridge and agent leg each, ari_app/dialer/agents.py), one row
-- per agent working a campaign on app instance `app`, so a restarted app re-adopts the agent's live
-- channel and bridge instead of calling their phone again (ari_app/dialer/restore.py).
-- Written through the batched writer as row sets (like acd_state_rows): the row is replaced at
-- every state change and deleted when the session ends.
CREATE TABLE dialer_sessions (
    app         text NOT NULL,
    agent_id    text NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, agent_id)
);
