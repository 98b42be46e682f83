-- Parameters, read at query time (change them with SET VARIABLE, e.g.
--   SET VARIABLE aurora_window = 100; SELECT * FROM recovery;
-- or `aurora sql --window 100`, or analysis.views.connect(..., window=100)).
--   aurora_window            W, the rolling window in completed requests (default 50, as summary.py)
--   aurora_recovery_level    recovery threshold as a share of the pre-shift AL (default 0.9)
--   aurora_after_shift_head  requests in "AL after shift" (default 200, as summary.py)
CREATE OR REPLACE MACRO aurora_window() AS coalesce(getvariable('aurora_window'), 50)::BIGINT;
CREATE OR REPLACE MACRO aurora_recovery_level() AS coalesce(getvariable('aurora_recovery_level'), 0.9)::DOUBLE;
CREATE OR REPLACE MACRO aurora_after_shift_head() AS coalesce(getvariable('aurora_after_shift_head'), 200)::BIGINT;
CREATE OR REPLACE MACRO al_convention() AS getvariable('aurora_al_convention')::VARCHAR;
