-- view recovery: per shift, as summary.recovery: level_before = AL over the completed requests
--   with index in [shift_at - W, shift_at) (rounded to 4 places, as summary.py); then, over the
--   completed requests of the new segment in trace order, recovery_requests = the first k >= W
--   whose last W requests (all after the shift) have AL >= aurora_recovery_level() x level_before
--   (NULL: not within the segment, or a run without speculation: AL 1.0 by construction).
--   al_after_head = AL over the first aurora_after_shift_head() completed requests after it.
CREATE OR REPLACE VIEW recovery AS
WITH before AS (
    SELECT sh.run_id, sh.segment, sum(p.generated) AS g, sum(p.verify_rounds) AS r
    FROM shifts sh JOIN per_request p
      ON p.run_id = sh.run_id AND p.request_index >= sh.shift_at - aurora_window() AND p.request_index < sh.shift_at
    GROUP BY ALL),
after AS (
    SELECT sh.run_id, sh.segment, p.request_index, p.generated, p.verify_rounds,
           row_number() OVER (PARTITION BY sh.run_id, sh.segment ORDER BY p.request_index) AS k
    FROM shifts sh JOIN per_request p
      ON p.run_id = sh.run_id AND p.request_index >= sh.shift_at AND p.request_index < sh.end_request),
roll AS (
    SELECT *, sum(generated) OVER w AS g_w, sum(verify_rounds) OVER w AS r_w
    FROM after
    WINDOW w AS (PARTITION BY run_id, segment ORDER BY k ROWS BETWEEN aurora_window() - 1 PRECEDING AND CURRENT ROW)),
lvl AS (
    SELECT sh.*, round(b.g / nullif(b.r, 0), 4) AS level_before
    FROM shifts sh LEFT JOIN before b USING (run_id, segment)),
rec AS (
    SELECT l.run_id, l.segment, arg_min(roll.k, roll.k) AS recovery_requests,
           arg_min(roll.request_index, roll.k) AS recovered_at_request_index
    FROM lvl l JOIN roll USING (run_id, segment)
    WHERE roll.k >= aurora_window() AND roll.r_w > 0 AND roll.g_w / roll.r_w >= aurora_recovery_level() * l.level_before
    GROUP BY ALL),
head AS (
    SELECT run_id, segment, count(*) AS after_requests,
           round(sum(generated) FILTER (WHERE k <= aurora_after_shift_head())
                 / nullif(sum(verify_rounds) FILTER (WHERE k <= aurora_after_shift_head()), 0), 4) AS al_after_head
    FROM after GROUP BY ALL)
SELECT l.run_id, l.label, l.segment, l.shift_at, l.from_domain, l.to_domain,
       aurora_window() AS "window", aurora_recovery_level() AS level,
       l.level_before, h.al_after_head, aurora_after_shift_head() AS head,
       coalesce(h.after_requests, 0) AS after_requests,
       CASE WHEN ru.gamma > 0 THEN rec.recovery_requests END AS recovery_requests,
       CASE WHEN ru.gamma > 0 THEN rec.recovered_at_request_index END AS recovered_at_request_index
FROM lvl l JOIN runs ru USING (run_id)
LEFT JOIN rec USING (run_id, segment) LEFT JOIN head h USING (run_id, segment);

-- view day0_ramp: for each from-scratch run (init scratch) and the static run of its group
--   (same comparable_key, draft kind and gamma): ramp_requests = the first n >= W (completed
--   requests served, trace order) whose rolling AL (last W) reaches the static run's AL over the
--   same segment as request n (target_acceptance_length); ramp_requests_overall uses the static
--   run's overall AL instead. NULL: never within the run.
CREATE OR REPLACE VIEW day0_ramp AS
WITH scratch AS (
    SELECT i.run_id, i.label, s.run_id AS static_run_id
    FROM run_info i JOIN run_info s ON s.comparable_key = i.comparable_key AND s.arm = 'static'
                                   AND s.draft = i.draft AND s.gamma = i.gamma
    WHERE i.init = 'scratch'
    QUALIFY row_number() OVER (PARTITION BY i.run_id ORDER BY s.run_id) = 1),
r AS (
    SELECT sc.run_id, sc.static_run_id, ra.n, ra.request_index, ra.segment, ra.spec_decode_acceptance_length AS al,
           seg.spec_decode_acceptance_length AS target_al, acc.spec_decode_acceptance_length AS static_al
    FROM scratch sc
    JOIN rolling_al ra ON ra.run_id = sc.run_id
    LEFT JOIN al_by_segment seg ON seg.run_id = sc.static_run_id AND seg.segment = ra.segment
    LEFT JOIN acceptance acc ON acc.run_id = sc.static_run_id
    WHERE ra.n >= aurora_window()),
seg_hit AS (
    SELECT run_id, min(n) AS ramp_requests, arg_min(request_index, n) AS ramp_request_index,
           arg_min(segment, n) AS ramp_segment, arg_min(target_al, n) AS target_acceptance_length
    FROM r WHERE al >= target_al GROUP BY run_id),
all_hit AS (SELECT run_id, min(n) AS ramp_requests_overall FROM r WHERE al >= static_al GROUP BY run_id)
SELECT sc.run_id, sc.label, sc.static_run_id, aurora_window() AS "window",
       acc.spec_decode_acceptance_length AS static_acceptance_length,
       sh.ramp_requests, sh.ramp_request_index, sh.ramp_segment, sh.target_acceptance_length,
       ah.ramp_requests_overall
FROM scratch sc
LEFT JOIN acceptance acc ON acc.run_id = sc.static_run_id
LEFT JOIN seg_hit sh ON sh.run_id = sc.run_id LEFT JOIN all_hit ah ON ah.run_id = sc.run_id;
