-- Core records: calls, their legs, the queue event log, agent state history.
-- Every row is traceable to Asterisk: legs are keyed by Asterisk's channel id (which we choose ourselves
-- for channels we originate), and a call's id is the channel id of the leg that started it.
-- No foreign keys between these tables on purpose: the batched writer may land a leg before its call
-- row after a database outage, and records of an Asterisk restart are closed out of order.

CREATE TABLE calls (
    id                 text PRIMARY KEY,
    direction          text NOT NULL DEFAULT 'inbound'
                       CHECK (direction IN ('inbound', 'outbound', 'callback', 'click2call', 'internal')),
    caller             text,
    callee             text,
    queue              text,
    agent_id           text,
    created_at         timestamptz NOT NULL,
    answered_at        timestamptz,
    entered_queue_at   timestamptz,
    bridged_at         timestamptz,
    ended_at           timestamptz,
    position_on_entry  integer,
    hangup_cause       integer,
    hangup_cause_txt   text,
    hangup_by          text,          -- caller | agent | system
    outcome            text,          -- answered | abandoned | timeout | exitkey | overflow | full | empty | failed | lost
    data               jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_created_at ON calls (created_at);
CREATE INDEX calls_queue_created_at ON calls (queue, created_at);
CREATE INDEX calls_agent_created_at ON calls (agent_id, created_at);
CREATE INDEX calls_open ON calls (id) WHERE ended_at IS NULL;

CREATE TABLE call_legs (
    channel_id         text PRIMARY KEY,   -- Asterisk's channel id
    call_id            text NOT NULL,
    role               text NOT NULL,      -- caller | agent | customer | snoop | other
    channel_name       text,
    endpoint           text,
    agent_id           text,
    created_at         timestamptz NOT NULL,
    answered_at        timestamptz,
    bridged_at         timestamptz,
    ended_at           timestamptz,
    hangup_cause       integer,
    hangup_cause_txt   text,
    outcome            text,               -- answered | noanswer | busy | congestion | failed | canceled | lost
    data               jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_legs_call_id ON call_legs (call_id);
CREATE INDEX call_legs_open ON call_legs (channel_id) WHERE ended_at IS NULL;

-- In the spirit of Asterisk's queue_log: one row per queue event, with app_queue's event names.
CREATE TABLE queue_events (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    call_id   text,
    queue     text,
    agent_id  text,
    event     text NOT NULL,
    data      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX queue_events_at ON queue_events (at);
CREATE INDEX queue_events_queue_at ON queue_events (queue, at);
CREATE INDEX queue_events_call ON queue_events (call_id);

CREATE TABLE agent_states (
    id         bigserial PRIMARY KEY,
    agent_id   text NOT NULL,
    at         timestamptz NOT NULL,
    old_state  text,
    state      text NOT NULL,
    reason     text
);
CREATE INDEX agent_states_agent_at ON agent_states (agent_id, at);
