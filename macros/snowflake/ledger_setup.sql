{#-
  The audit ledger on Snowflake (docs/snowflake.md, "The audit ledger"): Time Travel retention,
  an insert-only writer role and a read-only auditor role, a managed-access attestation schema,
  an internal stage for per-batch unloads, and backup sets (optionally retention-locked).

    dbt run-operation marketing_signals_ledger_setup --target snowflake [--args '{dry_run: true}']

  Run it as a role that may create roles, grant privileges and create backup policies (e.g.
  SNOWFLAKE_ROLE=ACCOUNTADMIN for this one command), once before the first `dbt build` and once
  after it: statements on a ledger table that does not exist yet are skipped (logged). It is
  idempotent (IF NOT EXISTS / GRANT). Every statement is logged; dry_run logs without running.
  On any other adapter it only logs that nothing is needed (DuckDB: read-only WORM files,
  docs/attestation.md).

  Print the statements without running anything (any target, no Snowflake needed):
    dbt compile --inline "{{ marketing_signals_ledger_setup_sql() }}"

  NOT EXECUTED LOCALLY: fakesnow implements none of roles, grants, managed access, retention or
  backups. The SQL follows the Snowflake reference; see docs/snowflake.md for what is unconfirmed.
-#}

{#- Names and settings, from vars (all optional). -#}
{% macro marketing_signals_ledger_config() %}
  {%- set ledger = ref('attestation_ledger') -%}
  {%- set checkpoints = ref('attestation_checkpoints') -%}
  {%- set schema = ledger.database ~ '.' ~ ledger.schema -%}
  {%- set tables = [] -%}
  {%- for name in var('marketing_signals__ledger_tables', ['attestation_ledger', 'attestation_checkpoints']) -%}
    {%- do tables.append({'name': name, 'relation': ref(name)}) -%}
  {%- endfor -%}
  {%- set stage = var('marketing_signals__ledger_stage', 'MARKETING_SIGNALS_LEDGER_WORM') -%}
  {%- set policy = var('marketing_signals__ledger_backup_policy', 'MARKETING_SIGNALS_LEDGER_BACKUP') -%}
  {{ return({
      'database': ledger.database,
      'schema': schema,
      'schema_name': ledger.schema,
      'ledger': ledger,
      'checkpoints': checkpoints,
      'tables': tables,
      'retention_days': var('marketing_signals__ledger_retention_days', 90) | int,
      'build_role': var('marketing_signals__ledger_build_role', 'MARKETING_SIGNALS_DBT'),
      'writer_role': var('marketing_signals__ledger_writer_role', 'MARKETING_SIGNALS_LEDGER_WRITER'),
      'auditor_role': var('marketing_signals__ledger_auditor_role', 'MARKETING_SIGNALS_LEDGER_AUDITOR'),
      'owner_role': var('marketing_signals__ledger_owner_role', none),
      'stage': stage if '.' in stage else schema ~ '.' ~ stage,
      'external_stage': var('marketing_signals__ledger_external_stage', none),
      'policy': policy if '.' in policy else schema ~ '.' ~ policy,
      'backup_schedule': var('marketing_signals__ledger_backup_schedule', '1440 MINUTE'),
      'backup_expire_days': var('marketing_signals__ledger_backup_expire_days', 2557) | int,
      'retention_lock': var('marketing_signals__ledger_retention_lock', false),
  }) }}
{% endmacro %}


{#- The statements, in order: a list of {table: name or none, sql: text}. A statement with a
    table needs that table to exist (it is created by the first dbt build). -#}
{% macro marketing_signals_ledger_setup_statements(cfg=none) %}
  {%- set c = cfg or marketing_signals_ledger_config() -%}
  {%- set s = [] -%}
  {#- the attestation schema: managed access (only the schema owner or MANAGE GRANTS can grant on
      its objects) and the Time Travel default for every table in it -#}
  {%- do s.append({'table': none, 'sql': "create schema if not exists " ~ c.schema
        ~ " with managed access data_retention_time_in_days = " ~ c.retention_days
        ~ " comment = 'marketing_signals attestation: the audit ledger (docs/snowflake.md)'"}) -%}
  {%- do s.append({'table': none, 'sql': "alter schema " ~ c.schema ~ " enable managed access"}) -%}
  {%- do s.append({'table': none, 'sql': "alter schema " ~ c.schema ~ " set data_retention_time_in_days = " ~ c.retention_days}) -%}
  {%- if c.owner_role -%}
    {%- do s.append({'table': none, 'sql': "grant ownership on schema " ~ c.schema ~ " to role " ~ c.owner_role ~ " copy current grants"}) -%}
  {%- endif -%}
  {#- dbt keeps building the attestation models in the schema (tables, views, and the temporary
      stage and file format Snowpark's write_pandas creates for a Python model's result) -#}
  {%- do s.append({'table': none, 'sql': "grant usage, create table, create view, create stage, create file format on schema "
        ~ c.schema ~ " to role " ~ c.build_role}) -%}
  {#- the insert-only writer (granted to the dbt role) and the read-only auditor -#}
  {%- for role, what in [(c.writer_role, 'insert-only writer'), (c.auditor_role, 'read-only auditor')] -%}
    {%- do s.append({'table': none, 'sql': "create role if not exists " ~ role ~ " comment = 'marketing_signals audit ledger: " ~ what ~ "'"}) -%}
    {%- do s.append({'table': none, 'sql': "grant usage on database " ~ c.database ~ " to role " ~ role}) -%}
    {%- do s.append({'table': none, 'sql': "grant usage on schema " ~ c.schema ~ " to role " ~ role}) -%}
  {%- endfor -%}
  {%- do s.append({'table': none, 'sql': "grant role " ~ c.writer_role ~ " to role " ~ c.build_role}) -%}
  {#- internal stage for the per-batch unloads (marketing_signals_ledger_unload); not WORM by
      itself: a role with WRITE can REMOVE files -#}
  {%- do s.append({'table': none, 'sql': "create stage if not exists " ~ c.stage
        ~ " comment = 'marketing_signals: one Parquet unload per sealed attestation batch'"}) -%}
  {%- do s.append({'table': none, 'sql': "grant read, write on stage " ~ c.stage ~ " to role " ~ c.writer_role}) -%}
  {%- do s.append({'table': none, 'sql': "grant read on stage " ~ c.stage ~ " to role " ~ c.auditor_role}) -%}
  {#- backups: with a retention lock nobody, ACCOUNTADMIN included, can delete a backup before it
      expires, and the lock cannot be removed (irreversible: opt in with
      marketing_signals__ledger_retention_lock: true) -#}
  {%- do s.append({'table': none, 'sql': "create backup policy if not exists " ~ c.policy
        ~ (" with retention lock" if c.retention_lock else "")
        ~ " schedule = '" ~ c.backup_schedule ~ "' expire_after_days = " ~ c.backup_expire_days
        ~ " comment = 'marketing_signals audit ledger backups'"}) -%}
  {#- per ledger table -#}
  {%- for t in c.tables -%}
    {%- set rel = t.relation -%}
    {%- do s.append({'table': t.name, 'sql': "alter table " ~ rel ~ " set data_retention_time_in_days = " ~ c.retention_days}) -%}
    {%- do s.append({'table': t.name, 'sql': "grant insert, select on table " ~ rel ~ " to role " ~ c.writer_role}) -%}
    {%- do s.append({'table': t.name, 'sql': "revoke update, delete, truncate on table " ~ rel ~ " from role " ~ c.writer_role}) -%}
    {%- do s.append({'table': t.name, 'sql': "grant select on table " ~ rel ~ " to role " ~ c.auditor_role}) -%}
    {%- do s.append({'table': t.name, 'sql': "create backup set if not exists " ~ c.schema ~ "." ~ rel.identifier ~ "_backups"
          ~ " for table " ~ rel ~ " with backup policy " ~ c.policy
          ~ " comment = 'marketing_signals audit ledger: " ~ t.name ~ "'"}) -%}
    {%- if c.owner_role -%}
      {#- the dbt role gives up ownership: from here on it appends through the writer role only -#}
      {%- do s.append({'table': t.name, 'sql': "grant ownership on table " ~ rel ~ " to role " ~ c.owner_role ~ " copy current grants"}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(s) }}
{% endmacro %}


{#- All statements as one SQL text (no execution, any adapter). -#}
{% macro marketing_signals_ledger_setup_sql() %}
  {%- set lines = ["-- before (and again after) the first dbt build"] -%}
  {%- set ns = namespace(table=none) -%}
  {%- for st in marketing_signals_ledger_setup_statements() -%}
    {%- if st.table and st.table != ns.table -%}
      {%- do lines.append("-- after the first dbt build (needs " ~ st.table ~ ")") -%}
      {%- set ns.table = st.table -%}
    {%- endif -%}
    {%- do lines.append(st.sql ~ ";") -%}
  {%- endfor -%}
  {{ return(lines | join("\n")) }}
{% endmacro %}


{% macro marketing_signals_ledger_setup(dry_run=false) %}
  {{ return(adapter.dispatch('marketing_signals_ledger_setup', 'marketing_signals')(dry_run)) }}
{% endmacro %}

{% macro default__marketing_signals_ledger_setup(dry_run) %}
  {{ log("marketing_signals_ledger_setup: nothing to do on a " ~ target.type ~ " target. The ledger's "
         ~ "write-once copies are the read-only Parquet files under marketing_signals__worm_dir "
         ~ "(docs/attestation.md); this operation is for Snowflake (docs/snowflake.md).", info=true) }}
{% endmacro %}

{% macro snowflake__marketing_signals_ledger_setup(dry_run) %}
  {%- set c = marketing_signals_ledger_config() -%}
  {%- set exists = {} -%}
  {%- for t in c.tables -%}
    {%- do exists.update({t.name: adapter.get_relation(t.relation.database, t.relation.schema, t.relation.identifier) is not none}) -%}
  {%- endfor -%}
  {#- dbt-snowflake creates tables TRANSIENT unless transient: false (dbt_project.yml sets it for
      the attestation folder); a transient table cannot be made permanent in place -#}
  {%- set names = [] -%}
  {%- for t in c.tables if exists[t.name] -%}
    {%- do names.append(t.relation.identifier | upper) -%}
  {%- endfor -%}
  {%- if names -%}
    {%- set found = run_query("select table_name from " ~ c.database ~ ".information_schema.tables where table_schema = '"
          ~ c.schema_name | upper ~ "' and table_name in ('" ~ names | join("', '") ~ "') and is_transient = 'YES'") -%}
    {%- set transient = found.columns[0].values() | list -%}
    {%- if transient -%}
      {{ exceptions.raise_compiler_error("marketing_signals_ledger_setup: " ~ transient | join(', ') ~ " in " ~ c.schema
          ~ " are TRANSIENT (no Fail-safe, at most 1 day of Time Travel) and cannot be altered to permanent. "
          ~ "Check that the model has transient: false (dbt ls --select <model> --output json --output-keys config), "
          ~ "then copy it into a permanent table (docs/snowflake.md, 'A ledger table created transient').") }}
    {%- endif -%}
  {%- endif -%}
  {%- set who = run_query("select current_role()").columns[0].values()[0] -%}
  {{ log("marketing_signals_ledger_setup: " ~ ("dry run, " if dry_run else "") ~ "as role " ~ who ~ " on " ~ c.schema, info=true) }}
  {%- for st in marketing_signals_ledger_setup_statements(c) -%}
    {%- if st.table and not exists[st.table] -%}
      {{ log("  skipped (" ~ st.table ~ " does not exist yet; run again after the first dbt build): " ~ st.sql, info=true) }}
    {%- else -%}
      {{ log("  " ~ st.sql ~ ";", info=true) }}
      {%- if not dry_run -%}{%- do run_query(st.sql) -%}{%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not c.retention_lock -%}
    {{ log("marketing_signals_ledger_setup: the backup policy has NO retention lock (backups can be deleted); "
           ~ "for WORM set marketing_signals__ledger_retention_lock: true (irreversible).", info=true) }}
  {%- endif -%}
{% endmacro %}
