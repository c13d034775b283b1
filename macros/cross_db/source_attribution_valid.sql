{#-
  The SQL of the generic test source_attribution_valid (tests/generic/source_attribution_valid.sql):
  every row whose `column_name` is not an object with non-empty "signal_types" and
  "source_systems" objects of at most `max_items` numeric weights each, every weight in (0, 1]
  and each object's weights summing to 1 within `tolerance`.
-#}

{% macro default__test_source_attribution_valid(model, column_name, max_items, tolerance) %}
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
{% endmacro %}

{#- Snowflake has no MAP cast of JSON: each distinct attribution is parsed once (TRY_PARSE_JSON),
    each part's entries are FLATTENed into count / min / max / sum, and every row of the model
    whose attribution fails is returned (one row per model row, as on DuckDB). A part that is
    missing or not an object, is empty, or has a weight that is not a number fails (stricter
    than DuckDB, whose TRY_CAST to MAP(VARCHAR, DOUBLE) turns a text weight into NULL, which
    list_min/max/sum skip); text that is not JSON is a failing row (DuckDB's json_extract
    raises on it). -#}
{% macro snowflake__test_source_attribution_valid(model, column_name, max_items, tolerance) %}
{%- set parts = ['signal_types', 'source_systems'] %}
with attributions as (
    select attribution, try_parse_json(attribution) as doc
    from (select distinct {{ column_name }} as attribution from {{ model }} where {{ column_name }} is not null) as texts
),
{%- for part in parts %}

{{ part }}_objects as (
    select attribution, doc:{{ part }} as part_object
    from attributions
    where is_object(doc:{{ part }})
),

{{ part }}_weights as (
    select
        objects.attribution,
        count(entry.key) as n_entries,
        count(try_to_double(entry.value::varchar)) as n_weights,
        min(try_to_double(entry.value::varchar)) as min_weight,
        max(try_to_double(entry.value::varchar)) as max_weight,
        sum(try_to_double(entry.value::varchar)) as total_weight
    from {{ part }}_objects as objects,
        lateral flatten(input => objects.part_object, outer => true) as entry
    group by objects.attribution
),
{%- endfor %}

invalid as (
    select attributions.attribution
    from attributions
    {%- for part in parts %}
    left join {{ part }}_weights on {{ part }}_weights.attribution = attributions.attribution
    {%- endfor %}
    where attributions.doc is null
    {%- for part in parts %}
       or coalesce({{ part }}_weights.n_entries, 0) = 0
       or {{ part }}_weights.n_weights < {{ part }}_weights.n_entries
       or {{ part }}_weights.n_entries > {{ max_items }}
       or {{ part }}_weights.min_weight <= 0
       or {{ part }}_weights.max_weight > 1
       or abs({{ part }}_weights.total_weight - 1) > {{ tolerance }}
    {%- endfor %}
)

select {{ column_name }} as attribution
from {{ model }}
where {{ column_name }} is null
   or {{ column_name }} in (select attribution from invalid)
{% endmacro %}
