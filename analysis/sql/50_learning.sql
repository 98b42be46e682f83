-- view swap_timeline: every controller decision (kind: swap | rollback | hold | superseded |
--   not_applied) with its times; applied = swap or rollback that took effect; publish_ns =
--   ready - decided (write + load), trainer_lag_ns = effective - newest_capture_ns.
CREATE OR REPLACE VIEW swap_timeline AS
SELECT s.run_id, ru.label, s.decision, s.kind, s.policy, s.reason,
       s.kind IN ('swap', 'rollback') AND s.effective_ns IS NOT NULL AS applied,
       s.from_version, s.to_version, s.train_step,
       s.decided_ns, s.ready_ns, s.effective_ns, s.newest_capture_ns,
       s.ready_ns - s.decided_ns AS publish_ns,
       s.effective_ns - s.newest_capture_ns AS trainer_lag_ns,
       s.metrics_json
FROM swaps s JOIN runs ru USING (run_id);

-- view serving_versions: which draft version served when: one row per interval between applied
--   swaps (the initial draft from 0), until the next applied swap or the makespan; verify rounds
--   and accepted tokens served by it in that interval.
CREATE OR REPLACE VIEW serving_versions AS
WITH changes AS (
    SELECT run_id, 0::BIGINT AS since_ns, min(version) AS version, 'init' AS via, -1 AS decision
    FROM versions GROUP BY run_id
    UNION ALL
    SELECT run_id, effective_ns, to_version, kind, decision FROM swap_timeline WHERE applied),
iv AS (
    SELECT c.*, coalesce(lead(since_ns) OVER (PARTITION BY run_id ORDER BY since_ns, decision), i.makespan_ns) AS until_ns,
           row_number() OVER (PARTITION BY run_id ORDER BY since_ns, decision) AS interval
    FROM changes c JOIN run_info i USING (run_id))
SELECT iv.run_id, ru.label, iv.interval, iv.version, iv.via, iv.since_ns, iv.until_ns,
       count(r.round) AS verify_rounds, coalesce(sum(r.accepted), 0)::BIGINT AS accepted,
       coalesce(sum(r.accepted + r.bonus), 0) / nullif(count(r.round), 0) AS spec_decode_acceptance_length
FROM iv JOIN runs ru USING (run_id)
LEFT JOIN rounds r ON r.run_id = iv.run_id AND r.draft_version = iv.version
                  AND r.t_start_ns >= iv.since_ns AND r.t_start_ns < iv.until_ns
GROUP BY ALL;

-- view trainer_lag: per applied swap with a capture time: trainer_lag_ns = effective_ns -
--   newest_capture_ns (the newest served request the new draft learned from, to the first round
--   it serves), and requests_meanwhile = requests completed in (newest_capture_ns, effective_ns],
--   i.e. served without the new draft's lesson.
CREATE OR REPLACE VIEW trainer_lag AS
SELECT s.run_id, s.label, s.decision, s.kind, s.to_version, s.train_step,
       s.newest_capture_ns, s.decided_ns, s.ready_ns, s.effective_ns,
       s.trainer_lag_ns, s.trainer_lag_ns / 1e6 AS trainer_lag_ms,
       (SELECT count(*) FROM requests q
         WHERE q.run_id = s.run_id AND q.status = 'completed'
           AND q.finish_ns > s.newest_capture_ns AND q.finish_ns <= s.effective_ns) AS requests_meanwhile
FROM swap_timeline s
WHERE s.applied AND s.newest_capture_ns IS NOT NULL;

-- view trainer_loss: every optimizer step (status ok or dropped), with loss parts and
--   loss_mean10 = mean loss over this and the previous 9 ok steps (summary's final_loss is the
--   last ok step's value).
CREATE OR REPLACE VIEW trainer_loss AS
SELECT t.run_id, ru.label, t.step, t.status, t.t_start_ns, t.t_end_ns, t.requests, t.new_requests,
       t.tokens, t.discard_tokens, t.loss, t.loss_accepted, t.loss_discard, t.grad_norm, t.base_version,
       t.newest_capture_ns, t.oldest_capture_ns,
       CASE WHEN t.status = 'ok' THEN avg(t.loss) FILTER (WHERE t.status = 'ok') OVER (
           PARTITION BY t.run_id, t.status = 'ok' ORDER BY t.step ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) END
           AS loss_mean10
FROM train_steps t JOIN runs ru USING (run_id);
