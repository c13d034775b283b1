{#-
  Fails on every row whose source_attribution is not the cohort JSON shape: an object with
  non-empty "signal_types" and "source_systems" objects, at most `max_items` entries each, every
  weight in (0, 1] and the weights of each summing to 1 (within `tolerance`). DuckDB JSON.
-#}
{% test source_attribution_valid(model, column_name, max_items=5, tolerance=0.000001) %}
with parsed as (
    select
        {{ column_name }} as attribution,
        {%- for part in ['signal_types', 'source_systems'] %}
        try_cast(json_extract({{ column_name }}, '$.{{ part }}') as map(varchar, double)) as {{ part }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)

select attribution
from parsed
where attribution is null
   or not json_valid(attribution)
{%- for part in ['signal_types', 'source_systems'] %}
   or {{ part }} is null
   or cardinality({{ part }}) = 0
   or cardinality({{ part }}) > {{ max_items }}
   or list_min(map_values({{ part }})) <= 0
   or list_max(map_values({{ part }})) > 1
   or abs(list_sum(map_values({{ part }})) - 1) > {{ tolerance }}
{%- endfor %}
{% endtest %}
