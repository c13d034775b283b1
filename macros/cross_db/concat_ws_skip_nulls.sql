{#-
  The values joined by `separator`, NULLs skipped (DuckDB's concat_ws). Snowflake's CONCAT_WS
  returns NULL when any value is NULL, so there each value carries its own separator and
  a NULL contributes nothing.
  `exprs` is a list of SQL expressions.
-#}
{% macro concat_ws_skip_nulls(separator, exprs) %}
  {{ return(adapter.dispatch('concat_ws_skip_nulls', 'marketing_signals')(separator, exprs)) }}
{% endmacro %}

{% macro default__concat_ws_skip_nulls(separator, exprs) -%}
  concat_ws('{{ separator }}', {{ exprs | join(', ') }})
{%- endmacro %}

{% macro snowflake__concat_ws_skip_nulls(separator, exprs) -%}
  substr({% for e in exprs %}coalesce('{{ separator }}' || cast({{ e }} as varchar), ''){{ " || " if not loop.last }}{% endfor %}, {{ separator | length + 1 }})
{%- endmacro %}
