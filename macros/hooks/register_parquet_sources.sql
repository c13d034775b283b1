{#-
  Demo mode (DuckDB only): expose the generated Parquet folders as the raw source views
  <source_schema>.<table>, so the package reads them exactly as it would read a user's own
  tables. Runs as on-run-start; a no-op when marketing_signals__raw_parquet_dir is empty,
  on other adapters, or for a table whose folder holds no Parquet file (logged).
-#}
{% macro register_parquet_sources() %}
  {%- if execute and target.type == 'duckdb' and var('marketing_signals__raw_parquet_dir', '') -%}
    {%- set raw_dir = var('marketing_signals__raw_parquet_dir') | string -%}
    {%- set schema = var('marketing_signals__source_schema') -%}
    {%- set tables = ['events', 'stream_metrics', 'context_events', 'subscriber_acks', 'outcomes'] -%}
    {%- set statements = ["create schema if not exists " ~ schema] -%}
    {%- for table in tables -%}
      {%- set pattern = raw_dir.rstrip('/') ~ '/' ~ table ~ '/*.parquet' -%}
      {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] -%}
      {%- if found > 0 -%}
        {%- do statements.append(
              "create or replace view " ~ schema ~ "." ~ var('marketing_signals__' ~ table ~ '_identifier')
              ~ " as select * from read_parquet('" ~ pattern ~ "')") -%}
      {%- else -%}
        {{ log("marketing_signals: no Parquet files at " ~ pattern ~ "; source '" ~ table ~ "' not registered", info=true) }}
      {%- endif -%}
    {%- endfor -%}
    {#- only when something was found: a package install elsewhere leaves no empty schema behind -#}
    {{ return(statements | join(";\n") if statements | length > 1 else "") }}
  {%- endif -%}
{% endmacro %}
