-- Click-to-call: one row per request to the public endpoint (and per agent "click to dial"),
-- accepted or refused, with the reason. The public endpoint is a toll-fraud target: these rows
-- are the audit trail (who asked, from where, for which number) and, after a restart, what the
-- abuse limits are rebuilt from. An accepted request's call is the `calls` row with id = call_id.

CREATE TABLE click_to_call_requests (
    id             text PRIMARY KEY,
    created_at     timestamptz NOT NULL,
    source         text,            -- web (site key + origin) | token (signed token) | agent (click to dial)
    site           text,            -- site key
    ip             text,            -- the visitor's address (the API client's for click to dial)
    origin         text,            -- the Origin header as received
    number_input   text,            -- what was typed (at most 32 characters)
    number         text,            -- E.164, once validated
    target         text,            -- queue:NAME | agent:ID
    call_order     text,            -- agent-first | customer-first | agent-dial
    accepted       boolean NOT NULL DEFAULT false,
    reason         text,            -- why it was refused (NULL when accepted)
    call_id        text,
    status         text,            -- latest status of an accepted request
    status_reason  text,
    agent_id       text,
    finished_at    timestamptz,
    data           jsonb NOT NULL DEFAULT '{}'::jsonb,   -- context (page, name, note), status history
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX click_to_call_requests_created_at ON click_to_call_requests (created_at);
CREATE INDEX click_to_call_requests_number ON click_to_call_requests (number, created_at);
CREATE INDEX click_to_call_requests_ip ON click_to_call_requests (ip, created_at);
