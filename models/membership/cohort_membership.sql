{#-
  Current cohort membership: one row per customer × method × window (the current period of
  cohort_membership_history) with the calibrated confidence — the probability, learned from
  history, that the membership still holds at the next as_of (cohort_calibration; isotonic,
  interpolated between its breakpoints exactly as scikit-learn predicts). Null with
  calibration_status explaining why until there is enough history. A view: a recalibration
  applies to every row at once, and nothing is copied.
-#}
{{ config(materialized='view') }}

with points as (
    select
        method_id,
        window_id,
        calibration_version,
        x,
        y,
        row_number() over (partition by method_id, window_id order by point) as position,
        lead(x) over (partition by method_id, window_id order by point) as next_x,
        lead(y) over (partition by method_id, window_id order by point) as next_y
    from {{ ref('cohort_calibration_points') }}
    where kind = 'breakpoint'
),

segments as (
    -- [lower, upper) ranges of raw confidence; below the first and above the last breakpoint
    -- the curve is flat (clipped)
    select
        method_id,
        window_id,
        calibration_version,
        case when position = 1 then cast('-infinity' as double) else x end as lower_bound,
        coalesce(next_x, cast('infinity' as double)) as upper_bound,
        x,
        y,
        coalesce(next_x, x) as next_x,
        coalesce(next_y, y) as next_y
    from points
)

select
    history.customer_key,
    history.method_id,
    history.window_id,
    history.cohort_id,
    history.cohort_label,
    case
        when segments.method_id is null then cast(null as double)
        when history.raw_confidence <= segments.x or segments.next_x = segments.x then segments.y
        when history.raw_confidence >= segments.next_x then segments.next_y
        else segments.y + (history.raw_confidence - segments.x)
             * (segments.next_y - segments.y) / (segments.next_x - segments.x)
    end as calibrated_confidence,
    history.raw_confidence,
    history.score,
    history.source_attribution,
    history.valid_from,
    history.valid_to,
    history.is_current,
    history.entered_reason,
    history.updated_as_of,
    history.model_version,
    calibration.calibration_version,
    coalesce(calibration.status, 'awaiting_history') as calibration_status,
    calibration.ece_calibrated as calibration_ece
from {{ ref('cohort_membership_history') }} as history
left join {{ ref('cohort_calibration') }} as calibration
    on calibration.method_id = history.method_id
   and calibration.window_id = history.window_id
left join segments
    on segments.method_id = history.method_id
   and segments.window_id = history.window_id
   and history.raw_confidence >= segments.lower_bound
   and history.raw_confidence < segments.upper_bound
where history.is_current
