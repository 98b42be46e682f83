-- view run_info: one row per run: identity, config, derived arm and the comparison group.
--   arm: runs.arm (no-spec | static | online-static | online-scratch | scratch-frozen), derived
--   from init and policy as ReplayConfig.arm for logs written before that column. comparable_key: runs with equal keys replayed the same
--   requests (trace_sha256 + requests) with the same target proxy, batch and cost model
--   (hardware + deployment + profile), so their throughputs compare. makespan_ns: end_ns, or for a
--   run that did not finish the last logged round's end.
CREATE OR REPLACE VIEW run_info AS
WITH last_round AS (SELECT run_id, max(t_end_ns) AS last_ns FROM rounds GROUP BY run_id)
SELECT r.run_id, r.label, r.run_dir, r.status, r.name,
       coalesce(r.arm,  -- logs before the arm column: derived as ReplayConfig.arm does
                CASE WHEN r.init = 'none' THEN 'no-spec'
                     WHEN r.policy = 'none' THEN CASE WHEN r.init = 'scratch' THEN 'scratch-frozen' ELSE 'static' END
                     WHEN r.init = 'scratch' THEN 'online-scratch'
                     ELSE 'online-static' END) AS arm,
       r.trace, r.trace_sha256, r.requests, r.model, r.draft, r.init, r.policy, r.lambda_discard,
       r.batch, r.gamma, r.hardware, r.deployment,
       json_extract_string(r.config_json, '$.profile') AS profile, r.seed,
       json_extract(r.config_json, '$.controller.every')::INTEGER AS controller_every,
       json_extract(r.config_json, '$.controller.rollback')::BOOLEAN AS controller_rollback,
       -- the rate the learner used: lr_finetune (when set) for a draft that starts trained
       coalesce(CASE WHEN r.init NOT IN ('none', 'scratch')
                     THEN json_extract(r.config_json, '$.learner.lr_finetune')::DOUBLE END,
                json_extract(r.config_json, '$.learner.lr')::DOUBLE) AS learner_lr,
       json_extract_string(r.config_json, '$.recipe') AS recipe,  -- NULL: a log from before recipes
       -- the speculation-depth policy; a config without one (the default, or an older log) is fixed
       coalesce(json_extract_string(r.config_json, '$.depth.policy'), 'fixed') AS depth_policy,
       json_extract_string(r.cost_model_json, '$.name') AS cost_model,
       r.end_ns,
       coalesce(nullif(r.end_ns, 0), lr.last_ns, 0) AS makespan_ns,
       concat_ws('|', r.trace_sha256, r.requests, r.model, r.batch, r.hardware, r.deployment,
                 coalesce(json_extract_string(r.config_json, '$.profile'), '')) AS comparable_key
FROM runs r LEFT JOIN last_round lr USING (run_id);

-- view segments: the trace's segments as the replay saw them (runs.segments_json): first request,
--   end (exclusive: the next segment's first request, or the run's request count) and domain.
CREATE OR REPLACE VIEW segments AS
WITH s AS (
    SELECT run_id, label, requests, segments_json,
           unnest(range(json_array_length(segments_json)::BIGINT)) AS segment
    FROM runs)
SELECT run_id, label, segment::INTEGER AS segment,
       json_extract_string(segments_json, '$[' || segment || '][1]') AS domain,
       json_extract(segments_json, '$[' || segment || '][0]')::INTEGER AS first_request,
       coalesce(json_extract(segments_json, '$[' || (segment + 1) || '][0]')::INTEGER, requests::INTEGER) AS end_request
FROM s;

-- view shifts: one row per domain shift (every segment after the first): where it happens and the
--   domains on either side.
CREATE OR REPLACE VIEW shifts AS
SELECT s.run_id, s.label, s.segment, s.first_request AS shift_at, s.end_request,
       p.domain AS from_domain, s.domain AS to_domain
FROM segments s JOIN segments p ON p.run_id = s.run_id AND p.segment = s.segment - 1;
