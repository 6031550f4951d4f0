-- Outbound campaigns: configuration, leads, do-not-call lists, lead imports and one row per dial attempt.
-- Leads are claimed by the app instances through this table (FOR UPDATE SKIP LOCKED), so it is the one
-- place that says which lead is being dialled by whom.

CREATE TABLE dialer_campaigns (
    id          text PRIMARY KEY,
    config      jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'stopped' CHECK (state IN ('stopped', 'running', 'paused')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- status: ready (may be dialled when its retry time, window and DNC allow), dialing (claimed by an
-- instance or an agent's preview), done (closed: a person was reached and dispositioned), dnc,
-- exhausted (max attempts used).
CREATE TABLE dialer_leads (
    id                 bigserial PRIMARY KEY,
    campaign_id        text NOT NULL,
    phone              text NOT NULL,          -- E.164
    tz                 text NOT NULL,          -- IANA zone the calling window is checked in
    data               jsonb NOT NULL DEFAULT '{}'::jsonb,
    status             text NOT NULL DEFAULT 'ready'
                       CHECK (status IN ('ready', 'dialing', 'done', 'dnc', 'exhausted')),
    priority           integer NOT NULL DEFAULT 0,
    attempts           integer NOT NULL DEFAULT 0,
    retry_at           timestamptz,
    last_abandoned_at  timestamptz,
    last_result        text,
    last_disposition   text,
    claimed_by         text,
    claimed_at         timestamptz,
    import_id          text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, phone)
);
CREATE INDEX dialer_leads_ready ON dialer_leads (campaign_id, priority DESC, retry_at NULLS LAST, id)
    WHERE status = 'ready';
CREATE INDEX dialer_leads_claimed ON dialer_leads (claimed_by) WHERE status = 'dialing';

-- scope '' is the global list; otherwise the campaign id.
CREATE TABLE dialer_dnc (
    scope       text NOT NULL DEFAULT '',
    number      text NOT NULL,
    source      text,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (number, scope)
);

CREATE TABLE dialer_imports (
    id           text PRIMARY KEY,
    campaign_id  text NOT NULL,
    kind         text NOT NULL DEFAULT 'leads',   -- leads | dnc
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    phase        text,
    total        integer NOT NULL DEFAULT 0,
    processed    integer NOT NULL DEFAULT 0,
    imported     integer NOT NULL DEFAULT 0,
    merged       integer NOT NULL DEFAULT 0,
    rejected     integer NOT NULL DEFAULT 0,
    errors       jsonb NOT NULL DEFAULT '[]'::jsonb, -- [{row, reason, message}], the first 1000
    message      text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per dial attempt, keyed like calls.id (the customer channel id). Written through the
-- batched writer, so columns an update may leave out are nullable.
CREATE TABLE dial_attempts (
    id              text PRIMARY KEY,
    campaign_id     text,
    lead_id         bigint,
    number          text,
    attempt         integer,
    mode            text,
    dialed_at       timestamptz,
    answered_at     timestamptz,
    amd_at          timestamptz,
    connected_at    timestamptz,
    ended_at        timestamptz,
    ring_seconds    double precision,
    -- no-answer | busy | congestion | failed | machine | human | abandoned | connected | hangup
    result          text,
    amd_status      text,
    amd_cause       text,
    agent_id        text,
    connect_ms      integer,     -- from the human decision to the customer in the agent's bridge
    talk_seconds    double precision,
    disposition     text,
    hangup_cause    integer,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dial_attempts_campaign_dialed ON dial_attempts (campaign_id, dialed_at);
CREATE INDEX dial_attempts_lead ON dial_attempts (lead_id);
