-- view throughput: output tokens (all requests) / virtual makespan, per run.
CREATE OR REPLACE VIEW throughput AS
SELECT i.run_id, i.label, i.arm, i.comparable_key,
       coalesce(sum(q.output_tokens), 0)::BIGINT AS output_tokens,
       count(q.request_index) FILTER (WHERE q.status = 'completed') AS completed,
       count(q.request_index) FILTER (WHERE q.status = 'refused') AS refused,
       i.makespan_ns, i.makespan_ns / 1e9 AS virtual_s,
       coalesce(sum(q.output_tokens), 0) / nullif(i.makespan_ns / 1e9, 0) AS throughput_tok_s
FROM run_info i LEFT JOIN requests q USING (run_id)
GROUP BY i.run_id, i.label, i.arm, i.comparable_key, i.makespan_ns;

-- view speedup: throughput ratios against the baselines among the runs given, within one
--   comparable_key (same trace requests, target proxy, batch, hardware + deployment): the no-spec
--   run (init none) and the static run (init not scratch, learning off; for a speculative run the
--   same draft kind and gamma, preferring the same init). A run is not its own baseline (NULL), as in compare.json.
CREATE OR REPLACE VIEW speedup AS
WITH t AS (
    SELECT t.*, i.draft, i.gamma, i.init FROM throughput t JOIN run_info i USING (run_id)),
ns AS (
    SELECT comparable_key, min(run_id) AS no_spec_run_id,
           arg_min(throughput_tok_s, run_id) AS no_spec_throughput_tok_s
    FROM t WHERE arm = 'no-spec' GROUP BY comparable_key),
st AS (
    SELECT t.run_id, s.run_id AS static_run_id, s.throughput_tok_s AS static_throughput_tok_s
    FROM t JOIN t s ON s.comparable_key = t.comparable_key AND s.arm = 'static'
                   AND (t.arm = 'no-spec' OR (s.draft = t.draft AND s.gamma = t.gamma))
    QUALIFY row_number() OVER (PARTITION BY t.run_id ORDER BY (s.init = t.init) DESC, s.run_id) = 1)
SELECT t.run_id, t.label, t.arm, t.comparable_key, t.output_tokens, t.virtual_s, t.throughput_tok_s,
       ns.no_spec_run_id, ns.no_spec_throughput_tok_s,
       CASE WHEN ns.no_spec_run_id <> t.run_id THEN t.throughput_tok_s / ns.no_spec_throughput_tok_s END
           AS speedup_vs_no_spec,
       st.static_run_id, st.static_throughput_tok_s,
       CASE WHEN st.static_run_id <> t.run_id THEN t.throughput_tok_s / st.static_throughput_tok_s END
           AS speedup_vs_static
FROM t LEFT JOIN ns USING (comparable_key) LEFT JOIN st USING (run_id);
