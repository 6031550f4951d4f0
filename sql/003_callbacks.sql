-- Callbacks: a caller who pressed the callback key (virtual hold) or a callback scheduled over the
-- API. The row exists before the caller is told "you will be called back", and it is the only
-- truth about the callback: the ACD item that waits for an agent is rebuilt from it after a
-- restart, and an instance claims it here (one UPDATE, row-locked) before dialling the customer.

CREATE TABLE callbacks (
    id               text PRIMARY KEY,
    number           text NOT NULL,            -- E.164 (what the dialling policy accepted)
    queue            text NOT NULL,
    agent            text,                     -- preferred agent (scheduled for someone)
    fallback_after   double precision,         -- seconds the preferred agent has before anyone may take it
    state            text NOT NULL
                     CHECK (state IN ('scheduled', 'pending', 'in-progress', 'completed', 'failed', 'cancelled')),
    source           text NOT NULL,            -- virtual-hold | api
    origin_call_id   text,                     -- the call the callback was asked for in
    -- The caller's original queue entry and priority: the callback keeps its place among callers.
    entered_at       timestamptz NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    skills           jsonb NOT NULL DEFAULT '{}'::jsonb,
    not_before       timestamptz,
    not_after        timestamptz,
    timezone         text,
    attempts         integer NOT NULL DEFAULT 0,   -- counted attempts (busy, no answer, failed)
    max_attempts     integer NOT NULL,
    retry_delay      double precision NOT NULL,
    next_attempt_at  timestamptz,
    -- The app instance (app name) that holds it in its queue, and the ACD item / call id there.
    owner            text,
    item_id          text,
    enqueued         integer NOT NULL DEFAULT 0,   -- how many times it entered a queue (item ids)
    agent_id         text,                     -- the agent who took the last attempt
    outcome          text,                     -- why it ended / the last attempt's outcome
    notes            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    connected_at     timestamptz,
    ended_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- One open callback per number and queue: a second request is refused, also when two arrive at once.
CREATE UNIQUE INDEX callbacks_one_open ON callbacks (number, queue)
    WHERE state IN ('scheduled', 'pending', 'in-progress');
CREATE INDEX callbacks_open ON callbacks (priority DESC, entered_at)
    WHERE state IN ('scheduled', 'pending', 'in-progress');
CREATE INDEX callbacks_queue_created ON callbacks (queue, created_at);

-- Every dial attempt: which call (calls.id) and agent, and how it ended.
CREATE TABLE callback_attempts (
    callback_id  text NOT NULL,
    attempt      integer NOT NULL,
    call_id      text,
    agent_id     text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    outcome      text,                          -- connected | busy | noanswer | congestion | failed | ...
    counted      boolean,                       -- counted toward max_attempts
    PRIMARY KEY (callback_id, attempt)
);

-- Per-queue callback policy (see ari_app/callbacks/core/policy.py); a queue without one uses the defaults.
CREATE TABLE callback_policies (
    queue       text PRIMARY KEY,
    config      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
