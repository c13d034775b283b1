-- Guards: no two causes share the same set of (stream_id, direction) symptoms; otherwise
-- the ranker could not tell them apart from the symptoms alone.
-- Two sets are equal when every pair of one is in the other and both have the same size.
-- Returns each pair of causes whose sets are identical.
with pairs as (
    select distinct cause_id, stream_id, direction
    from {{ ref('registry_root_cause_signatures') }}
),

set_sizes as (
    select cause_id, count(*) as set_size
    from pairs
    group by cause_id
),

shared as (
    select a.cause_id as cause_a, b.cause_id as cause_b, count(*) as shared_pairs
    from pairs as a
    inner join pairs as b
        on a.stream_id = b.stream_id
        and a.direction = b.direction
        and a.cause_id < b.cause_id
    group by a.cause_id, b.cause_id
)

select shared.cause_a, shared.cause_b, shared.shared_pairs
from shared
inner join set_sizes as sa on sa.cause_id = shared.cause_a
inner join set_sizes as sb on sb.cause_id = shared.cause_b
where shared.shared_pairs = sa.set_size
    and shared.shared_pairs = sb.set_size
