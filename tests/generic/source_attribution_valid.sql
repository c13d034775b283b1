{#-
  Fails on every row whose source_attribution is not the cohort JSON shape: an object with
  non-empty "signal_types" and "source_systems" objects, at most `max_items` entries each, every
  weight in (0, 1] and the weights of each summing to 1 (within `tolerance`). The SQL is per
  adapter: macros/cross_db/source_attribution_valid.sql (DuckDB JSON; Snowflake FLATTEN).
-#}
{% test source_attribution_valid(model, column_name, max_items=5, tolerance=0.000001) %}
{{ adapter.dispatch('test_source_attribution_valid', 'marketing_signals')(model, column_name, max_items, tolerance) }}
{% endtest %}
