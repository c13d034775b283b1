{#-
  Load Parquet folders (one per source table: <raw_dir>/events/*.parquet, ...) into the five raw
  tables on Snowflake, where the sources read them (marketing_signals__source_database /
  __source_schema / __<table>_identifier). For the demo data or a first trial; production loads
  belong to your ingestion pipeline.

    dbt run-operation marketing_signals_load_raw --target snowflake \
        [--args '{raw_dir: /abs/path/raw, tables: [events], dry_run: true}']

  Per table: CREATE TABLE IF NOT EXISTS with the contract's columns (README "Point it at your own
  data"), PUT the folder's files to a stage sub-path (AUTO_COMPRESS = FALSE), COPY INTO the table
  by column name. COPY's load metadata skips files it already loaded, so a re-run adds nothing.
  Every folder must hold Parquet files (PUT fails on a pattern that matches nothing): limit the
  tables with tables: [events, ...]. raw_dir defaults to $MARKETING_SIGNALS_RAW_DIR or
  data/demo/raw, relative paths from $PWD.

  Render the statements without running anything (any target):
    dbt compile --inline "{{ marketing_signals_load_raw_sql() }}"
-#}

{% macro marketing_signals_raw_tables() %}
  {{ return({
      'events': "event_id varchar, customer_id varchar, signal_type varchar, occurred_at timestamp_ntz, received_at timestamp_ntz, source_system varchar, channel varchar, location_id varchar, jurisdiction varchar, amount double, properties varchar",
      'stream_metrics': "stream_id varchar, location_id varchar, period_start date, value double",
      'context_events': "context_event_id varchar, context_type varchar, location_id varchar, starts_at timestamp_ntz, ends_at timestamp_ntz, description varchar, source_system varchar",
      'subscriber_acks': "sync_run_id varchar, subscriber_id varchar, sync_started_at timestamp_ntz, sync_completed_at timestamp_ntz, status varchar, records_acknowledged number, acknowledged_through timestamp_ntz",
      'outcomes': "outcome_id varchar, outcome_type varchar, subject_id varchar, location_id varchar, label varchar, observed_at timestamp_ntz, source_system varchar",
  }) }}
{% endmacro %}

{% macro marketing_signals_load_raw_statements(raw_dir=none, tables=none) %}
  {%- set raw_dir = raw_dir or env_var('MARKETING_SIGNALS_RAW_DIR', 'data/demo/raw') -%}
  {%- set raw_dir = (raw_dir if raw_dir.startswith('/') else env_var('PWD', '.') ~ '/' ~ raw_dir).rstrip('/') -%}
  {%- set schema = (var('marketing_signals__source_database', none) or target.database) ~ '.' ~ var('marketing_signals__source_schema', 'raw') -%}
  {%- set stage = schema ~ '.MARKETING_SIGNALS_RAW_LOAD' -%}
  {%- set s = ["create schema if not exists " ~ schema,
               "create stage if not exists " ~ stage ~ " comment = 'marketing_signals: raw Parquet files to load'"] -%}
  {%- for name, columns in marketing_signals_raw_tables().items() if tables is none or name in tables -%}
    {%- set table = schema ~ '.' ~ var('marketing_signals__' ~ name ~ '_identifier', name) -%}
    {%- do s.append("create table if not exists " ~ table ~ " (" ~ columns ~ ")") -%}
    {%- do s.append("put 'file://" ~ raw_dir ~ "/" ~ name ~ "/*.parquet' @" ~ stage ~ "/" ~ name ~ "/ auto_compress = false overwrite = true") -%}
    {%- do s.append("copy into " ~ table ~ " from @" ~ stage ~ "/" ~ name ~ "/"
          ~ " file_format = (type = parquet use_logical_type = true) match_by_column_name = case_insensitive") -%}
  {%- endfor -%}
  {{ return(s) }}
{% endmacro %}

{% macro marketing_signals_load_raw_sql(raw_dir=none, tables=none) %}
  {{ return(marketing_signals_load_raw_statements(raw_dir, tables) | join(";\n") ~ ";") }}
{% endmacro %}


{% macro marketing_signals_load_raw(raw_dir=none, tables=none, dry_run=false) %}
  {{ return(adapter.dispatch('marketing_signals_load_raw', 'marketing_signals')(raw_dir, tables, dry_run)) }}
{% endmacro %}

{% macro default__marketing_signals_load_raw(raw_dir, tables, dry_run) %}
  {{ log("marketing_signals_load_raw: not needed on a " ~ target.type ~ " target: DuckDB reads the Parquet "
         ~ "folders in place (marketing_signals__raw_parquet_dir, README 'Point it at your own data').", info=true) }}
{% endmacro %}

{% macro snowflake__marketing_signals_load_raw(raw_dir, tables, dry_run) %}
  {%- for sql in marketing_signals_load_raw_statements(raw_dir, tables) -%}
    {{ log("marketing_signals_load_raw: " ~ sql ~ ";", info=true) }}
    {%- if not dry_run -%}
      {%- set result = run_query(sql) -%}
      {%- if sql.startswith('copy ') -%}
        {%- for row in result.rows -%}
          {{ log("  " ~ row.values()[:4] | join("  "), info=true) }}
        {%- endfor -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
{% endmacro %}
