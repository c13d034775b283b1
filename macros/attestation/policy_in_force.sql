{#-
  One row: the registry_policy_version in force when the decision is made (this run's start),
  whatever the data's as_of. Use as a CTE body.
-#}
{% macro policy_in_force() -%}
    select policy_version
    from {{ ref('registry_policy_version') }}
    where cast(effective_from as timestamp) <= {{ marketing_signals.timestamp_literal(run_started_at) }}
    order by effective_from desc
    limit 1
{%- endmacro %}
