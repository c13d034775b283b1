{#-
  After each `dbt build` on Snowflake (docs/snowflake.md, "The audit ledger"): unload every sealed
  batch that is not on the ledger stage yet, and take a backup of each ledger table.

    dbt run-operation marketing_signals_ledger_unload --target snowflake [--args '{dry_run: true}']

  Per new checkpoint (attestation_checkpoints.batch_id not yet under @<stage>/checkpoints/):
    COPY INTO @<stage>/batches/<batch_id>/      the batch's ledger rows (Parquet, several files)
    COPY INTO @<stage>/checkpoints/<batch_id>.parquet   its checkpoint row (one file, written last:
                                                        its presence marks the batch as unloaded)
  both with OVERWRITE = FALSE, and the same two into marketing_signals__ledger_external_stage when
  set (an external stage on an S3 bucket with Object Lock, docs/snowflake.md). Then
  ALTER BACKUP SET <table>_backups ADD BACKUP for each ledger table.

  Render the statements for one batch without running anything (any target):
    dbt compile --inline "{{ marketing_signals_ledger_unload_sql('b1') }}"

  NOT EXECUTED LOCALLY: fakesnow has no unload (COPY INTO <location>) and no backups.
-#}

{% macro marketing_signals_ledger_unload_statements(batch_id, cfg=none) %}
  {%- set c = cfg or marketing_signals_ledger_config() -%}
  {%- set b = batch_id | string | replace("'", "''") -%}
  {%- set s = [] -%}
  {%- for stage in [c.stage, c.external_stage] if stage -%}
    {%- do s.append("copy into @" ~ stage ~ "/batches/" ~ b ~ "/ from (select * from " ~ c.ledger
          ~ " where batch_id = '" ~ b ~ "' order by sequence_no)"
          ~ " file_format = (type = parquet) header = true overwrite = false") -%}
    {%- do s.append("copy into @" ~ stage ~ "/checkpoints/" ~ b ~ ".parquet from (select * from " ~ c.checkpoints
          ~ " where batch_id = '" ~ b ~ "')"
          ~ " file_format = (type = parquet) header = true single = true overwrite = false") -%}
  {%- endfor -%}
  {{ return(s) }}
{% endmacro %}

{% macro marketing_signals_ledger_backup_statements(cfg=none) %}
  {%- set c = cfg or marketing_signals_ledger_config() -%}
  {%- set s = [] -%}
  {%- for t in c.tables -%}
    {%- do s.append("alter backup set " ~ c.schema ~ "." ~ t.relation.identifier ~ "_backups add backup") -%}
  {%- endfor -%}
  {{ return(s) }}
{% endmacro %}

{#- The statements for one batch plus the backups, as one SQL text (no execution, any adapter). -#}
{% macro marketing_signals_ledger_unload_sql(batch_id='b1') %}
  {%- set st = marketing_signals_ledger_unload_statements(batch_id) + marketing_signals_ledger_backup_statements() -%}
  {{ return(st | join(";\n") ~ ";") }}
{% endmacro %}


{% macro marketing_signals_ledger_unload(dry_run=false) %}
  {{ return(adapter.dispatch('marketing_signals_ledger_unload', 'marketing_signals')(dry_run)) }}
{% endmacro %}

{% macro default__marketing_signals_ledger_unload(dry_run) %}
  {{ log("marketing_signals_ledger_unload: nothing to do on a " ~ target.type ~ " target (the checkpoint "
         ~ "model writes each batch to marketing_signals__worm_dir itself; docs/attestation.md).", info=true) }}
{% endmacro %}

{% macro snowflake__marketing_signals_ledger_unload(dry_run) %}
  {%- set c = marketing_signals_ledger_config() -%}
  {%- if adapter.get_relation(c.checkpoints.database, c.checkpoints.schema, c.checkpoints.identifier) is none -%}
    {{ log("marketing_signals_ledger_unload: " ~ c.checkpoints ~ " does not exist yet (run dbt build first)", info=true) }}
    {{ return(none) }}
  {%- endif -%}
  {#- LIST names look like <stage name in lower case>/checkpoints/<batch_id>.parquet -#}
  {%- set done = [] -%}
  {%- for name in run_query("list @" ~ c.stage ~ "/checkpoints/").columns[0].values() -%}
    {%- do done.append(name.split('/')[-1] | replace('.parquet', '')) -%}
  {%- endfor -%}
  {%- set batches = run_query("select batch_id from " ~ c.checkpoints ~ " order by checkpoint_no").columns[0].values() -%}
  {%- set todo = batches | reject('in', done) | list -%}
  {{ log("marketing_signals_ledger_unload: " ~ batches | length ~ " sealed batches, " ~ todo | length ~ " to unload"
         ~ (" (dry run)" if dry_run else ""), info=true) }}
  {%- for b in todo -%}
    {%- for sql in marketing_signals_ledger_unload_statements(b, c) -%}
      {{ log("  " ~ sql ~ ";", info=true) }}
      {%- if not dry_run -%}{%- do run_query(sql) -%}{%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- if todo -%}
    {%- for sql in marketing_signals_ledger_backup_statements(c) -%}
      {{ log("  " ~ sql ~ ";", info=true) }}
      {%- if not dry_run -%}{%- do run_query(sql) -%}{%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{% endmacro %}
