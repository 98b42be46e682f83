-- view depth_timeline: one row per run per engine round: when it ran (virtual ns), its batch, its
--   speculation depth (proposals per request: the rounds table's `proposed`, one value per round
--   since depth is batch-wide; 0 = a plain decode step) and the run's depth policy.
CREATE OR REPLACE VIEW depth_timeline AS
SELECT r.run_id, i.label, i.depth_policy, r.round, min(r.t_start_ns) AS t_start_ns, max(r.t_end_ns) AS t_end_ns,
       max(r.batch) AS batch, max(r.proposed) AS depth
FROM rounds r JOIN run_info i USING (run_id)
GROUP BY r.run_id, i.label, i.depth_policy, r.round;
