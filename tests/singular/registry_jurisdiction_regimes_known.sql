-- Guards: every regime a jurisdiction lists (pipe list in regimes) has at least one rule in
-- registry_compliance_rules, so no jurisdiction points at an empty regime.
-- Returns each jurisdiction × regime without rules. DuckDB syntax (string_split + unnest).
with listed as (
    select
        jurisdiction_id,
        trim(unnest(string_split(regimes, '|'))) as regime
    from {{ ref('registry_jurisdictions') }}
),

ruled as (
    select distinct regime
    from {{ ref('registry_compliance_rules') }}
)

select listed.jurisdiction_id, listed.regime
from listed
left join ruled
    on ruled.regime = listed.regime
where ruled.regime is null
