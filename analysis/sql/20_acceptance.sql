-- view per_request: one row per completed request in trace order (n = 1, 2, ... per run): its
--   segment, its own domain (a mixed segment holds several; segment_domain names the segment),
--   verify rounds (target-only rounds included, AL 1.0 each), draft rounds (with proposals),
--   proposed, accepted, generated = accepted + bonus, and the request's own AL.
CREATE OR REPLACE VIEW per_request AS
WITH g AS (
    SELECT run_id, request_index,
           count(*) AS verify_rounds,
           count(*) FILTER (WHERE proposed > 0) AS draft_rounds,
           sum(proposed)::BIGINT AS proposed, sum(accepted)::BIGINT AS accepted,
           sum(accepted + bonus)::BIGINT AS generated
    FROM rounds GROUP BY ALL)
SELECT q.run_id, ru.label,
       row_number() OVER (PARTITION BY q.run_id ORDER BY q.request_index) AS n,
       q.request_index, s.segment, q.domain, s.domain AS segment_domain,
       coalesce(g.verify_rounds, 0) AS verify_rounds, coalesce(g.draft_rounds, 0) AS draft_rounds,
       coalesce(g.proposed, 0) AS proposed, coalesce(g.accepted, 0) AS accepted,
       coalesce(g.generated, 0) AS generated,
       coalesce(g.generated, 0) / nullif(g.verify_rounds, 0) AS spec_decode_acceptance_length,
       q.output_tokens, q.arrival_ns, q.finish_ns
FROM requests q
JOIN runs ru ON ru.run_id = q.run_id
LEFT JOIN g ON g.run_id = q.run_id AND g.request_index = q.request_index
LEFT JOIN segments s ON s.run_id = q.run_id AND q.request_index >= s.first_request AND q.request_index < s.end_request
WHERE q.status = 'completed';

-- view rolling_al: per_request plus the AL over the last W completed requests of the run in trace
--   order (W = aurora_window(), default 50; fewer while n < W: see window_requests).
CREATE OR REPLACE VIEW rolling_al AS
SELECT run_id, label, n, request_index, segment, domain, finish_ns,
       aurora_window() AS "window",
       count(*) OVER w AS window_requests,
       sum(generated) OVER w AS window_generated,
       sum(verify_rounds) OVER w AS window_rounds,
       sum(generated) OVER w / nullif(sum(verify_rounds) OVER w, 0) AS spec_decode_acceptance_length
FROM per_request
WINDOW w AS (PARTITION BY run_id ORDER BY request_index ROWS BETWEEN aurora_window() - 1 PRECEDING AND CURRENT ROW);

-- view acceptance: per run over all completed requests: spec_decode_acceptance_length
--   (generated / verify rounds), spec_decode_acceptance_rate (accepted / proposed).
CREATE OR REPLACE VIEW acceptance AS
SELECT run_id, label, count(*) AS requests,
       sum(verify_rounds)::BIGINT AS verify_rounds, sum(draft_rounds)::BIGINT AS draft_rounds,
       sum(proposed)::BIGINT AS proposed, sum(accepted)::BIGINT AS accepted, sum(generated)::BIGINT AS generated,
       sum(generated) / nullif(sum(verify_rounds), 0) AS spec_decode_acceptance_length,
       sum(accepted) / nullif(sum(proposed), 0) AS spec_decode_acceptance_rate
FROM per_request GROUP BY run_id, label;

-- view al_by_segment: AL and acceptance rate per trace segment (every segment, even one with no
--   completed request: then requests = 0 and AL NULL).
CREATE OR REPLACE VIEW al_by_segment AS
SELECT s.run_id, s.label, s.segment, s.domain, s.first_request, s.end_request,
       count(p.n) AS requests,
       coalesce(sum(p.verify_rounds), 0)::BIGINT AS verify_rounds,
       coalesce(sum(p.proposed), 0)::BIGINT AS proposed, coalesce(sum(p.accepted), 0)::BIGINT AS accepted,
       sum(p.generated) / nullif(sum(p.verify_rounds), 0) AS spec_decode_acceptance_length,
       sum(p.accepted) / nullif(sum(p.proposed), 0) AS spec_decode_acceptance_rate
FROM segments s
LEFT JOIN per_request p ON p.run_id = s.run_id AND p.segment = s.segment
GROUP BY ALL;

-- view al_by_domain: AL and acceptance rate per domain (over all of its segments).
CREATE OR REPLACE VIEW al_by_domain AS
SELECT run_id, label, domain, count(*) AS requests,
       sum(verify_rounds)::BIGINT AS verify_rounds, sum(proposed)::BIGINT AS proposed,
       sum(accepted)::BIGINT AS accepted,
       sum(generated) / nullif(sum(verify_rounds), 0) AS spec_decode_acceptance_length,
       sum(accepted) / nullif(sum(proposed), 0) AS spec_decode_acceptance_rate
FROM per_request GROUP BY ALL;

-- view per_position_acceptance: spec_decode_per_position_acceptance_rate r_i = share of draft
--   rounds (rounds with proposals, of completed requests) whose accepted >= i, for
--   i = 1..max proposed (vLLM / SGLang's cumulative per-position rate). For chain drafts
--   1 + sum_i r_i = the AL over draft rounds.
CREATE OR REPLACE VIEW per_position_acceptance AS
WITH h AS (
    SELECT r.run_id, r.accepted, r.proposed, count(*) AS n
    FROM rounds r SEMI JOIN per_request p ON p.run_id = r.run_id AND p.request_index = r.request_index
    WHERE r.proposed > 0 GROUP BY ALL),
t AS (SELECT run_id, sum(n)::BIGINT AS draft_rounds, max(proposed) AS max_proposed FROM h GROUP BY run_id),
pos AS (SELECT run_id, draft_rounds, unnest(range(1, max_proposed + 1)) AS position FROM t)
SELECT pos.run_id, ru.label, pos.position::INTEGER AS position, pos.draft_rounds,
       coalesce(sum(h.n) FILTER (WHERE h.accepted >= pos.position), 0)::BIGINT AS accepted_rounds,
       coalesce(sum(h.n) FILTER (WHERE h.proposed >= pos.position), 0)::BIGINT AS proposed_rounds,
       coalesce(sum(h.n) FILTER (WHERE h.accepted >= pos.position), 0) / pos.draft_rounds
           AS spec_decode_per_position_acceptance_rate
FROM pos JOIN h USING (run_id) JOIN runs ru USING (run_id)
GROUP BY pos.run_id, ru.label, pos.position, pos.draft_rounds;

-- view per_position_acceptance_by_segment: the same per trace segment.
CREATE OR REPLACE VIEW per_position_acceptance_by_segment AS
WITH h AS (
    SELECT r.run_id, p.segment, p.segment_domain AS domain, r.accepted, r.proposed, count(*) AS n
    FROM rounds r JOIN per_request p ON p.run_id = r.run_id AND p.request_index = r.request_index
    WHERE r.proposed > 0 GROUP BY ALL),
t AS (SELECT run_id, segment, domain, sum(n)::BIGINT AS draft_rounds, max(proposed) AS max_proposed FROM h GROUP BY ALL),
pos AS (SELECT run_id, segment, domain, draft_rounds, unnest(range(1, max_proposed + 1)) AS position FROM t)
SELECT pos.run_id, ru.label, pos.segment, pos.domain, pos.position::INTEGER AS position, pos.draft_rounds,
       coalesce(sum(h.n) FILTER (WHERE h.accepted >= pos.position), 0)::BIGINT AS accepted_rounds,
       coalesce(sum(h.n) FILTER (WHERE h.accepted >= pos.position), 0) / pos.draft_rounds
           AS spec_decode_per_position_acceptance_rate
FROM pos JOIN h USING (run_id, segment, domain) JOIN runs ru USING (run_id)
GROUP BY pos.run_id, ru.label, pos.segment, pos.domain, pos.position, pos.draft_rounds;
