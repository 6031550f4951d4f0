-- Reporting: 15-minute interval roll-ups per queue and per agent, kept up to date incrementally,
-- and the record of supervisor listen/whisper/barge sessions.
--
-- Why roll-ups and not views: an interval report over a month at a busy site reads a million
-- calls and several million agent state rows through a view, every time; the roll-up reads
-- ~3,000 rows per queue. Roll-ups are kept exact without rescanning: triggers on the record
-- tables append a "mark" naming what changed (queue + time, agent + time range), in the same
-- transaction as the change, and report_rollup() recomputes exactly the intervals named by the
-- marks it can see, then deletes those marks. A change whose transaction commits after the
-- roll-up read its marks leaves its own mark behind for the next run, so nothing is missed
-- (marks are plain appends, never "already marked" upserts, which would race).
-- Recomputing an interval is idempotent: marks that arrive twice only cost time.
-- Definitions of every number are in docs/statistics.md.

CREATE OR REPLACE FUNCTION report_bucket(ts timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') $$;

CREATE TABLE report_marks (
    id      bigserial PRIMARY KEY,
    kind    text NOT NULL,          -- queue | agent | wrap
    key     text NOT NULL,          -- queue name | agent id
    t_from  timestamptz NOT NULL,
    t_to    timestamptz NOT NULL
);

-- Per queue and 15-minute interval, inbound calls by the interval they entered the queue in.
CREATE TABLE report_queue_intervals (
    queue               text NOT NULL,
    interval_start      timestamptz NOT NULL,
    offered             integer NOT NULL,
    answered            integer NOT NULL,
    answered_in_sl      integer NOT NULL,
    abandoned           integer NOT NULL,
    abandoned_short     integer NOT NULL,
    abandoned_after_sl  integer NOT NULL,
    timeout             integer NOT NULL,
    exitkey             integer NOT NULL,
    callback            integer NOT NULL,
    other_exit          integer NOT NULL,
    in_progress         integer NOT NULL,
    wait_answered_sum   double precision NOT NULL,
    wait_answered_max   double precision NOT NULL,
    wait_abandoned_sum  double precision NOT NULL,
    handled             integer NOT NULL,
    talk_sum            double precision NOT NULL,
    hold_sum            double precision NOT NULL,
    wrap_sum            double precision NOT NULL,
    sl_threshold        double precision NOT NULL,
    short_abandon       double precision NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, interval_start)
);
CREATE INDEX report_queue_intervals_start ON report_queue_intervals (interval_start);

-- Per agent and interval: seconds in each state (closed state periods only: the period an agent
-- is in right now is added at query time), calls connected and rings not answered.
CREATE TABLE report_agent_intervals (
    agent_id        text NOT NULL,
    interval_start  timestamptz NOT NULL,
    calls_handled   integer NOT NULL,
    ring_noanswer   integer NOT NULL,
    staffed         double precision NOT NULL,
    available       double precision NOT NULL,
    ringing         double precision NOT NULL,
    on_call         double precision NOT NULL,
    wrapup          double precision NOT NULL,
    paused          double precision NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, interval_start)
);
CREATE INDEX report_agent_intervals_start ON report_agent_intervals (interval_start);

-- What the recomputation looks up.
CREATE INDEX calls_queue_entered ON calls (queue, entered_queue_at);
CREATE INDEX queue_events_agent_at ON queue_events (agent_id, at) WHERE agent_id IS NOT NULL;

-- ---------------------------------------------------------------------------------- marks

CREATE OR REPLACE FUNCTION report_mark_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.queue, NEW.entered_queue_at, NEW.bridged_at, NEW.ended_at, NEW.outcome,
                             NEW.direction, NEW.data->'hold_seconds', NEW.agent_id)
        IS NOT DISTINCT FROM (OLD.queue, OLD.entered_queue_at, OLD.bridged_at, OLD.ended_at, OLD.outcome,
                              OLD.direction, OLD.data->'hold_seconds', OLD.agent_id) THEN
        RETURN NULL;  -- nothing a report counts changed
    END IF;
    IF NEW.queue IS NOT NULL AND NEW.entered_queue_at IS NOT NULL THEN
        INSERT INTO report_marks (kind, key, t_from, t_to)
        VALUES ('queue', NEW.queue, NEW.entered_queue_at, NEW.entered_queue_at);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.queue IS NOT NULL AND OLD.entered_queue_at IS NOT NULL
       AND (OLD.queue, OLD.entered_queue_at) IS DISTINCT FROM (NEW.queue, NEW.entered_queue_at) THEN
        INSERT INTO report_marks (kind, key, t_from, t_to)
        VALUES ('queue', OLD.queue, OLD.entered_queue_at, OLD.entered_queue_at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER calls_report_mark AFTER INSERT OR UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION report_mark_call();

CREATE OR REPLACE FUNCTION report_mark_queue_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agent_id IS NOT NULL AND NEW.event IN ('CONNECT', 'RINGNOANSWER') THEN
        INSERT INTO report_marks (kind, key, t_from, t_to) VALUES ('agent', NEW.agent_id, NEW.at, NEW.at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER queue_events_report_mark AFTER INSERT ON queue_events
    FOR EACH ROW EXECUTE FUNCTION report_mark_queue_event();

-- A state row closes the agent's previous state period (prev.at .. NEW.at); a row that arrives
-- late (after a later one, e.g. replayed after an outage) also splits the period it lands in.
-- A closed wrap-up changes the AHT of the queue interval of the call it followed ('wrap').
CREATE OR REPLACE FUNCTION report_mark_agent_state() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev record;
    nxt record;
BEGIN
    -- (at <= x AND (at < x OR id < y)) rather than (at, id) < (x, y): the index on (agent_id, at)
    -- serves the first form directly.
    SELECT at, state INTO prev FROM agent_states
     WHERE agent_id = NEW.agent_id AND at <= NEW.at AND (at < NEW.at OR id < NEW.id)
     ORDER BY at DESC, id DESC LIMIT 1;
    SELECT at, state INTO nxt FROM agent_states
     WHERE agent_id = NEW.agent_id AND at >= NEW.at AND (at > NEW.at OR id > NEW.id)
     ORDER BY at, id LIMIT 1;
    -- A logged-out period counts for nothing: only its ends need recomputing (an agent back on
    -- Monday morning does not recompute the weekend).
    IF prev.state = 'logged_out' THEN
        INSERT INTO report_marks (kind, key, t_from, t_to) VALUES ('agent', NEW.agent_id, prev.at, prev.at);
        INSERT INTO report_marks (kind, key, t_from, t_to)
        VALUES ('agent', NEW.agent_id, NEW.at, CASE WHEN NEW.state = 'logged_out' THEN NEW.at
                                                    ELSE COALESCE(nxt.at, NEW.at) END);
    ELSE
        INSERT INTO report_marks (kind, key, t_from, t_to)
        VALUES ('agent', NEW.agent_id, COALESCE(prev.at, NEW.at), COALESCE(nxt.at, NEW.at));
    END IF;
    IF prev.state = 'wrapup' THEN
        INSERT INTO report_marks (kind, key, t_from, t_to) VALUES ('wrap', NEW.agent_id, prev.at, prev.at);
    END IF;
    IF NEW.state = 'wrapup' AND nxt.at IS NOT NULL THEN
        INSERT INTO report_marks (kind, key, t_from, t_to) VALUES ('wrap', NEW.agent_id, NEW.at, NEW.at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agent_states_report_mark AFTER INSERT ON agent_states
    FOR EACH ROW EXECUTE FUNCTION report_mark_agent_state();

-- ---------------------------------------------------------------------------------- recompute

-- One queue interval, computed from the calls that entered the queue in it.
CREATE OR REPLACE FUNCTION report_queue_compute(p_queues text[], p_starts timestamptz[],
                                                p_short_abandon double precision,
                                                p_default_sl double precision)
    RETURNS SETOF report_queue_intervals LANGUAGE sql STABLE AS $$
    WITH d AS (
        SELECT u.queue, u.b,
               COALESCE((aq.config->>'service_level_threshold')::double precision, p_default_sl) AS t
          FROM unnest(p_queues, p_starts) AS u(queue, b)
          LEFT JOIN acd_queues aq ON aq.name = u.queue
    ), c AS (
        SELECT d.queue, d.b, d.t, x.outcome, x.ended_at IS NOT NULL AS ended,
               extract(epoch FROM COALESCE(x.bridged_at, x.ended_at, x.updated_at) - x.entered_queue_at)::double precision AS wait_answer,
               extract(epoch FROM COALESCE(x.ended_at, x.updated_at) - x.entered_queue_at)::double precision AS wait_end,
               extract(epoch FROM x.ended_at - COALESCE(x.bridged_at, x.ended_at))::double precision AS talk,
               COALESCE((x.data->>'hold_seconds')::double precision, 0) AS hold, wr.wrap
          FROM d
          CROSS JOIN LATERAL (   -- one index range scan per interval, whatever the statistics say
              SELECT * FROM calls y WHERE y.queue = d.queue AND y.entered_queue_at >= d.b
                 AND y.entered_queue_at < d.b + interval '15 minutes' AND y.direction = 'inbound'
               OFFSET 0) x   -- OFFSET 0: not pulled up into a hash join over the whole table
          -- Wrap-up after an answered call that ended: the agent's wrapup period that starts at
          -- the very instant of the call's COMPLETE event (the ACD core logs both at the same
          -- time), up to the agent's next state. None while the wrap-up goes on.
          LEFT JOIN LATERAL (
              SELECT extract(epoch FROM nx.at - w.at)::double precision AS wrap
                FROM queue_events qe
                JOIN agent_states w ON w.agent_id = qe.agent_id AND w.at = qe.at AND w.state = 'wrapup'
                CROSS JOIN LATERAL (SELECT s.at FROM agent_states s
                                     WHERE s.agent_id = w.agent_id AND s.at >= w.at AND (s.at > w.at OR s.id > w.id)
                                     ORDER BY s.at, s.id LIMIT 1) nx
               WHERE x.outcome = 'answered' AND x.ended_at IS NOT NULL
                 AND qe.call_id = x.id AND qe.event IN ('COMPLETECALLER', 'COMPLETEAGENT')
               ORDER BY qe.at DESC LIMIT 1) wr ON true
    )
    SELECT d.queue, d.b,
           count(c.b)::int,
           count(*) FILTER (WHERE c.outcome = 'answered')::int,
           count(*) FILTER (WHERE c.outcome = 'answered' AND c.wait_answer <= d.t)::int,
           count(*) FILTER (WHERE c.outcome = 'abandoned')::int,
           count(*) FILTER (WHERE c.outcome = 'abandoned' AND c.wait_end < p_short_abandon)::int,
           count(*) FILTER (WHERE c.outcome = 'abandoned' AND c.wait_end >= p_short_abandon AND c.wait_end > d.t)::int,
           count(*) FILTER (WHERE c.outcome = 'timeout')::int,
           count(*) FILTER (WHERE c.outcome = 'exitkey')::int,
           count(*) FILTER (WHERE c.outcome = 'callback')::int,
           count(*) FILTER (WHERE c.outcome IS NOT NULL
                              AND c.outcome NOT IN ('answered', 'abandoned', 'timeout', 'exitkey', 'callback'))::int,
           count(*) FILTER (WHERE c.b IS NOT NULL AND c.outcome IS NULL)::int,
           COALESCE(sum(c.wait_answer) FILTER (WHERE c.outcome = 'answered'), 0),
           COALESCE(max(c.wait_answer) FILTER (WHERE c.outcome = 'answered'), 0),
           COALESCE(sum(c.wait_end) FILTER (WHERE c.outcome = 'abandoned'), 0),
           count(*) FILTER (WHERE c.outcome = 'answered' AND c.ended)::int,
           COALESCE(sum(c.talk) FILTER (WHERE c.outcome = 'answered' AND c.ended), 0),
           COALESCE(sum(c.hold) FILTER (WHERE c.outcome = 'answered' AND c.ended), 0),
           COALESCE(sum(c.wrap) FILTER (WHERE c.outcome = 'answered' AND c.ended), 0),
           d.t, p_short_abandon, now()
      FROM d LEFT JOIN c ON c.queue = d.queue AND c.b = d.b
     GROUP BY d.queue, d.b, d.t
$$;

-- Agent intervals: state periods cut at interval boundaries, plus connects and unanswered rings.
-- Set-based per agent (one index range scan over the span of its requested intervals), so a
-- backfill of a month costs one pass over the rows, and a steady-state run a handful of probes.
CREATE OR REPLACE FUNCTION report_agent_compute(p_agents text[], p_starts timestamptz[])
    RETURNS SETOF report_agent_intervals LANGUAGE sql STABLE AS $$
    WITH d AS (
        SELECT DISTINCT u.agent_id, u.b FROM unnest(p_agents, p_starts) AS u(agent_id, b)
    ), r AS (
        SELECT agent_id, min(b) AS lo, max(b) + interval '15 minutes' AS hi FROM d GROUP BY agent_id
    ), rows AS (   -- the state at lo, the changes inside, and the first change at or after hi
        SELECT r.agent_id, x.at, x.id, x.state
          FROM r CROSS JOIN LATERAL (
              (SELECT s.at, s.id, s.state FROM agent_states s
                WHERE s.agent_id = r.agent_id AND s.at <= r.lo ORDER BY s.at DESC, s.id DESC LIMIT 1)
              UNION ALL
              (SELECT s.at, s.id, s.state FROM agent_states s
                WHERE s.agent_id = r.agent_id AND s.at > r.lo AND s.at < r.hi OFFSET 0)
              UNION ALL
              (SELECT s.at, s.id, s.state FROM agent_states s
                WHERE s.agent_id = r.agent_id AND s.at >= r.hi ORDER BY s.at, s.id LIMIT 1)
          ) x
    ), periods AS (   -- closed periods only: the current one is added at query time
        SELECT agent_id, state, at, lead(at) OVER (PARTITION BY agent_id ORDER BY at, id) AS nx FROM rows
    ), pieces AS (
        SELECT p.agent_id, g.b, p.state,
               extract(epoch FROM least(p.nx, g.b + interval '15 minutes') - greatest(p.at, g.b))::double precision AS secs
          FROM periods p
          CROSS JOIN LATERAL generate_series(report_bucket(p.at), report_bucket(p.nx), interval '15 minutes') AS g(b)
         WHERE p.nx IS NOT NULL AND p.nx > p.at AND p.state <> 'logged_out'
    ), st AS (
        SELECT agent_id, b,
               sum(secs) AS staffed,
               COALESCE(sum(secs) FILTER (WHERE state = 'available'), 0) AS available,
               COALESCE(sum(secs) FILTER (WHERE state = 'ringing'), 0) AS ringing,
               COALESCE(sum(secs) FILTER (WHERE state = 'on_call'), 0) AS on_call,
               COALESCE(sum(secs) FILTER (WHERE state = 'wrapup'), 0) AS wrapup,
               COALESCE(sum(secs) FILTER (WHERE state = 'paused'), 0) AS paused
          FROM pieces WHERE secs > 0 GROUP BY agent_id, b
    ), evs AS (
        SELECT r.agent_id, report_bucket(q.at) AS b,
               count(*) FILTER (WHERE q.event = 'CONNECT') AS connects,
               count(*) FILTER (WHERE q.event = 'RINGNOANSWER') AS noanswers
          FROM r CROSS JOIN LATERAL (
              SELECT q.at, q.event FROM queue_events q
               WHERE q.agent_id = r.agent_id AND q.at >= r.lo AND q.at < r.hi
                 AND q.event IN ('CONNECT', 'RINGNOANSWER') OFFSET 0) q
         GROUP BY r.agent_id, report_bucket(q.at)
    )
    SELECT d.agent_id, d.b, COALESCE(evs.connects, 0)::int, COALESCE(evs.noanswers, 0)::int,
           COALESCE(st.staffed, 0), COALESCE(st.available, 0), COALESCE(st.ringing, 0),
           COALESCE(st.on_call, 0), COALESCE(st.wrapup, 0), COALESCE(st.paused, 0), now()
      FROM d
      LEFT JOIN st ON st.agent_id = d.agent_id AND st.b = d.b
      LEFT JOIN evs ON evs.agent_id = d.agent_id AND evs.b = d.b
$$;

-- Recompute every interval named by a visible mark; returns how many of each were recomputed.
-- Serialised by an advisory lock (two app instances may both run it).
CREATE OR REPLACE FUNCTION report_rollup(p_short_abandon double precision DEFAULT 5,
                                         p_default_sl double precision DEFAULT 20,
                                         OUT queue_intervals integer, OUT agent_intervals integer)
    LANGUAGE plpgsql AS $$
DECLARE
    q_keys text[]; q_starts timestamptz[];
    a_keys text[]; a_starts timestamptz[];
BEGIN
    PERFORM pg_advisory_xact_lock(74200006);
    WITH taken AS (
        DELETE FROM report_marks RETURNING kind, key, t_from, t_to
    ), wraps AS (
        SELECT c.queue AS key, c.entered_queue_at AS t
          FROM taken m
          JOIN queue_events qe ON qe.agent_id = m.key AND qe.at = m.t_from
                              AND qe.event IN ('COMPLETECALLER', 'COMPLETEAGENT')
          JOIN calls c ON c.id = qe.call_id
         WHERE m.kind = 'wrap' AND c.queue IS NOT NULL AND c.entered_queue_at IS NOT NULL
    ), q AS (
        SELECT key, report_bucket(t_from) AS b FROM taken WHERE kind = 'queue'
        UNION SELECT key, report_bucket(t) FROM wraps
    ), a AS (
        SELECT DISTINCT m.key, g.b FROM taken m
         CROSS JOIN LATERAL generate_series(report_bucket(m.t_from), report_bucket(m.t_to),
                                            interval '15 minutes') AS g(b)
         WHERE m.kind = 'agent'
    )
    SELECT (SELECT array_agg(key ORDER BY key, b) FROM q), (SELECT array_agg(b ORDER BY key, b) FROM q),
           (SELECT array_agg(key ORDER BY key, b) FROM a), (SELECT array_agg(b ORDER BY key, b) FROM a)
      INTO q_keys, q_starts, a_keys, a_starts;

    queue_intervals := COALESCE(array_length(q_keys, 1), 0);
    agent_intervals := COALESCE(array_length(a_keys, 1), 0);
    IF queue_intervals > 0 THEN
        DELETE FROM report_queue_intervals r USING unnest(q_keys, q_starts) AS u(queue, b)
         WHERE r.queue = u.queue AND r.interval_start = u.b;
        INSERT INTO report_queue_intervals
        SELECT * FROM report_queue_compute(q_keys, q_starts, p_short_abandon, p_default_sl) x
         WHERE x.offered > 0;
    END IF;
    IF agent_intervals > 0 THEN
        DELETE FROM report_agent_intervals r USING unnest(a_keys, a_starts) AS u(agent_id, b)
         WHERE r.agent_id = u.agent_id AND r.interval_start = u.b;
        INSERT INTO report_agent_intervals
        SELECT * FROM report_agent_compute(a_keys, a_starts) x
         WHERE x.staffed > 0 OR x.calls_handled > 0 OR x.ring_noanswer > 0;
    END IF;
END $$;

-- ---------------------------------------------------------------------------------- supervisor

CREATE TABLE supervisor_sessions (
    id                  text PRIMARY KEY,
    mode                text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    agent_id            text NOT NULL,
    call_id             text,
    agent_channel       text,
    supervisor_endpoint text NOT NULL,
    supervisor_channel  text,
    snoop_channel       text,
    bridge_id           text,
    requested_by        text,
    created_at          timestamptz NOT NULL,
    connected_at        timestamptz,
    ended_at            timestamptz,
    outcome             text,           -- connected | supervisor-noanswer | supervisor-busy | call-ended | failed
    data                jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX supervisor_sessions_agent ON supervisor_sessions (agent_id, created_at);
CREATE INDEX supervisor_sessions_created ON supervisor_sessions (created_at);
