-- view run_summary: one row per run: the headline numbers of summary.summarize (same names where
--   shared) plus speedups, day-0 ramp and trainer lag.
CREATE OR REPLACE VIEW run_summary AS
WITH st AS (
    SELECT run_id, count(*) AS train_steps, count(*) FILTER (WHERE status = 'ok') AS train_steps_ok,
           arg_max(loss_mean10, step) FILTER (WHERE status = 'ok') AS final_loss
    FROM trainer_loss GROUP BY run_id),
sw AS (
    SELECT run_id, count(*) FILTER (WHERE kind = 'swap') AS swaps, count(*) FILTER (WHERE kind = 'rollback') AS rollbacks,
           count(*) FILTER (WHERE kind = 'hold') AS holds
    FROM swaps GROUP BY run_id),
lag AS (
    SELECT run_id, avg(trainer_lag_ms) AS trainer_lag_ms_mean, median(trainer_lag_ms) AS trainer_lag_ms_median,
           avg(requests_meanwhile) AS requests_meanwhile_mean
    FROM trainer_lag GROUP BY run_id)
SELECT i.run_id, i.label, i.arm, i.status, i.trace, i.requests, tp.completed, tp.refused, tp.output_tokens,
       tp.virtual_s, tp.throughput_tok_s,
       a.spec_decode_acceptance_length, a.spec_decode_acceptance_rate,
       sp.speedup_vs_no_spec, sp.speedup_vs_static,
       coalesce(st.train_steps, 0) AS train_steps, coalesce(st.train_steps_ok, 0) AS train_steps_ok,
       coalesce(st.train_steps - st.train_steps_ok, 0) AS train_steps_dropped, st.final_loss,
       coalesce(sw.swaps, 0) AS swaps, coalesce(sw.rollbacks, 0) AS rollbacks, coalesce(sw.holds, 0) AS holds,
       lag.trainer_lag_ms_mean, lag.trainer_lag_ms_median, lag.requests_meanwhile_mean,
       d.ramp_requests AS day0_ramp_requests
FROM run_info i
LEFT JOIN throughput tp USING (run_id) LEFT JOIN acceptance a USING (run_id) LEFT JOIN speedup sp USING (run_id)
LEFT JOIN st USING (run_id) LEFT JOIN sw USING (run_id) LEFT JOIN lag USING (run_id)
LEFT JOIN day0_ramp d USING (run_id);
