{#-
  Aggregate JSON values (e.g. json_object_value) into a JSON array, as text, in a deterministic
  order (order_by: a SQL order-by list). Null over no rows; coalesce to '[]' where needed.
-#}
{% macro json_array_agg(expr, order_by) %}
  {{ return(adapter.dispatch('json_array_agg', 'marketing_signals')(expr, order_by)) }}
{% endmacro %}

{% macro default__json_array_agg(expr, order_by) -%}
  cast(to_json(list({{ expr }} order by {{ order_by }})) as varchar)
{%- endmacro %}

{% macro snowflake__json_array_agg(expr, order_by) -%}
  to_varchar(array_agg({{ expr }}) within group (order by {{ order_by }}))
{%- endmacro %}
