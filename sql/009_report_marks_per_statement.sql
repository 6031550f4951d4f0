-- The reporting marks (006) are made once per statement instead of once per row.
--
-- Why: the batched writer sends a flush interval's records as one statement per table (hundreds of
-- rows), and a row trigger ran a PL/pgSQL call per row: for agent_states two look-ups and one to
-- three inserts each, about a third of PostgreSQL's work for a call. A statement trigger reads the
-- statement's rows from its transition table and makes all their marks in one INSERT ... SELECT.
-- The marks cover the same intervals: AFTER ROW triggers also ran at the end of the statement and
-- saw all of its rows, as these queries do (see 006 for what each mark means). Queue and agent
-- marks name 15-minute intervals only (the roll-up reads report_bucket() of them), so a statement's
-- marks are given as their intervals' starts and made once each: a flush interval's calls in one
-- queue make one queue mark, an agent's three state rows of a call one agent mark. 'wrap' marks
-- keep their exact time (the roll-up finds the call by it) and are made once each.
-- Transition tables take one event per trigger, so calls gets one for INSERT and one for UPDATE
-- (an INSERT ... ON CONFLICT DO UPDATE fires both, each with its own rows).

DROP TRIGGER calls_report_mark ON calls;
DROP TRIGGER queue_events_report_mark ON queue_events;
DROP TRIGGER agent_states_report_mark ON agent_states;
DROP FUNCTION report_mark_call();
DROP FUNCTION report_mark_queue_event();
DROP FUNCTION report_mark_agent_state();

CREATE FUNCTION report_mark_calls_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_marks (kind, key, t_from, t_to)
    SELECT DISTINCT 'queue', n.queue, report_bucket(n.entered_queue_at), report_bucket(n.entered_queue_at)
      FROM new_rows n
     WHERE n.queue IS NOT NULL AND n.entered_queue_at IS NOT NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION report_mark_calls_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS (  -- rows where something a report counts changed
        SELECT n.queue, n.entered_queue_at, o.queue AS old_queue, o.entered_queue_at AS old_entered
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE (n.queue, n.entered_queue_at, n.bridged_at, n.ended_at, n.outcome, n.direction,
                n.data->'hold_seconds', n.agent_id)
               IS DISTINCT FROM (o.queue, o.entered_queue_at, o.bridged_at, o.ended_at, o.outcome, o.direction,
                                 o.data->'hold_seconds', o.agent_id)
    )
    INSERT INTO report_marks (kind, key, t_from, t_to)
    SELECT 'queue', queue, report_bucket(entered_queue_at), report_bucket(entered_queue_at)
      FROM changed WHERE queue IS NOT NULL AND entered_queue_at IS NOT NULL
    UNION  -- once each
    SELECT 'queue', old_queue, report_bucket(old_entered), report_bucket(old_entered)
      FROM changed WHERE old_queue IS NOT NULL AND old_entered IS NOT NULL
       AND (old_queue, old_entered) IS DISTINCT FROM (queue, entered_queue_at);
    RETURN NULL;
END $$;

CREATE FUNCTION report_mark_queue_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_marks (kind, key, t_from, t_to)
    SELECT DISTINCT 'agent', n.agent_id, report_bucket(n.at), report_bucket(n.at)
      FROM new_rows n
     WHERE n.agent_id IS NOT NULL AND n.event IN ('CONNECT', 'RINGNOANSWER');
    RETURN NULL;
END $$;

-- A state row closes the agent's previous state period (prev.at .. NEW.at); a row that arrives
-- late (after a later one, e.g. replayed after an outage) also splits the period it lands in. A
-- logged-out period counts for nothing: only its ends need recomputing. A closed wrap-up changes
-- the AHT of the queue interval of the call it followed ('wrap').
CREATE FUNCTION report_mark_agent_states_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_marks (kind, key, t_from, t_to)
    SELECT DISTINCT m.kind, n.agent_id,
           CASE WHEN m.kind = 'wrap' THEN m.t_from ELSE report_bucket(m.t_from) END,
           CASE WHEN m.kind = 'wrap' THEN m.t_to ELSE report_bucket(m.t_to) END
      FROM new_rows n
      -- (at <= x AND (at < x OR id < y)) rather than (at, id) < (x, y): the index on
      -- (agent_id, at) serves the first form directly.
      LEFT JOIN LATERAL (SELECT s.at, s.state FROM agent_states s
                          WHERE s.agent_id = n.agent_id AND s.at <= n.at AND (s.at < n.at OR s.id < n.id)
                          ORDER BY s.at DESC, s.id DESC LIMIT 1) p ON true
      LEFT JOIN LATERAL (SELECT s.at FROM agent_states s
                          WHERE s.agent_id = n.agent_id AND s.at >= n.at AND (s.at > n.at OR s.id > n.id)
                          ORDER BY s.at, s.id LIMIT 1) x ON true
     CROSS JOIN LATERAL (VALUES
            (CASE WHEN p.state = 'logged_out' THEN 'agent' END, p.at, p.at),
            (CASE WHEN p.state = 'logged_out' THEN 'agent' END, n.at,
             CASE WHEN n.state = 'logged_out' THEN n.at ELSE COALESCE(x.at, n.at) END),
            (CASE WHEN p.state IS DISTINCT FROM 'logged_out' THEN 'agent' END,
             COALESCE(p.at, n.at), COALESCE(x.at, n.at)),
            (CASE WHEN p.state = 'wrapup' THEN 'wrap' END, p.at, p.at),
            (CASE WHEN n.state = 'wrapup' AND x.at IS NOT NULL THEN 'wrap' END, n.at, n.at)
        ) AS m(kind, t_from, t_to)
     WHERE m.kind IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER calls_report_mark_inserted AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_mark_calls_inserted();
CREATE TRIGGER calls_report_mark_updated AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_mark_calls_updated();
CREATE TRIGGER queue_events_report_mark AFTER INSERT ON queue_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_mark_queue_events_inserted();
CREATE TRIGGER agent_states_report_mark AFTER INSERT ON agent_states
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_mark_agent_states_inserted();
