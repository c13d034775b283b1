{#-
  Upload the engine zip that the Python models import on Snowflake (docs/snowflake.md, "Staging
  the engine"). Build the zip first:

    python -m marketing_signals.snowflake.stage_engine --out dist/marketing_signals.zip
    dbt run-operation marketing_signals_stage_engine --target snowflake \
        [--args '{zip_path: /abs/path/marketing_signals.zip, dry_run: true}']

  Creates the internal stage marketing_signals__engine_stage (default MARKETING_SIGNALS_ENGINE in
  the target's database and schema, the name dbt_project.yml puts in the Python models' `imports`)
  and its schema if missing (this runs before the first dbt build), PUTs the zip with
  AUTO_COMPRESS = FALSE (imports name the .zip itself) and OVERWRITE = TRUE, and lists the stage.
  Run it as the dbt role: it then owns the stage, and the models (caller's-rights procedures)
  can read it. A relative zip_path is taken from the directory dbt runs in ($PWD).

  Render the statements without running anything (any target):
    dbt compile --inline "{{ marketing_signals_stage_engine_sql() }}"
-#}

{% macro marketing_signals_engine_stage() %}
  {%- set stage = var('marketing_signals__engine_stage', 'MARKETING_SIGNALS_ENGINE') -%}
  {{ return(stage if '.' in stage else target.database ~ '.' ~ target.schema ~ '.' ~ stage) }}
{% endmacro %}

{% macro marketing_signals_stage_engine_statements(zip_path='dist/marketing_signals.zip') %}
  {%- set path = zip_path if zip_path.startswith('/') else env_var('PWD', '.') ~ '/' ~ zip_path -%}
  {%- set stage = marketing_signals_engine_stage() -%}
  {{ return([
      "create schema if not exists " ~ stage.rsplit('.', 1)[0],
      "create stage if not exists " ~ stage ~ " comment = 'marketing_signals engine zip: imports of the dbt Python models'",
      "put 'file://" ~ path ~ "' @" ~ stage ~ " auto_compress = false overwrite = true",
      "list @" ~ stage,
  ]) }}
{% endmacro %}

{% macro marketing_signals_stage_engine_sql(zip_path='dist/marketing_signals.zip') %}
  {{ return(marketing_signals_stage_engine_statements(zip_path) | join(";\n") ~ ";") }}
{% endmacro %}


{% macro marketing_signals_stage_engine(zip_path='dist/marketing_signals.zip', dry_run=false) %}
  {{ return(adapter.dispatch('marketing_signals_stage_engine', 'marketing_signals')(zip_path, dry_run)) }}
{% endmacro %}

{% macro default__marketing_signals_stage_engine(zip_path, dry_run) %}
  {{ log("marketing_signals_stage_engine: nothing to stage on a " ~ target.type ~ " target: its Python "
         ~ "models run in this process with the installed marketing_signals package.", info=true) }}
{% endmacro %}

{% macro snowflake__marketing_signals_stage_engine(zip_path, dry_run) %}
  {%- set statements = marketing_signals_stage_engine_statements(zip_path) -%}
  {%- for sql in statements -%}
    {{ log("marketing_signals_stage_engine: " ~ sql ~ ";", info=true) }}
    {%- if not dry_run -%}
      {%- set result = run_query(sql) -%}
      {%- if sql.startswith('put ') or sql.startswith('list ') -%}
        {%- for row in result.rows -%}
          {{ log("  " ~ row.values() | join("  "), info=true) }}
        {%- endfor -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
{% endmacro %}
