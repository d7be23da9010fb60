-- List filters: the parent columns and the listing indexes; namespace
-- retention. The design is
-- explained in migrations/postgres/0003_visibility.sql.

alter table runs add column parent_workflow_id text;
alter table runs add column parent_run_id text;

update runs set
    parent_workflow_id = coalesce(json_extract(state, '$.state.parent.workflow_id'),
        json_extract(state, '$.parent.workflow_id')),
    parent_run_id = coalesce(json_extract(state, '$.state.parent.run_id'),
        json_extract(state, '$.parent.run_id'))
where state like '%"parent":{%';

create index runs_by_type on runs (namespace, workflow_type, start_time desc, run_id desc);
create index runs_by_status on runs (namespace, status, start_time desc, run_id desc);
create index runs_by_close_time on runs (namespace, close_time desc, run_id desc);
create index runs_by_parent on runs (namespace, parent_workflow_id)
    where parent_workflow_id is not null;

-- Namespace retention, as on PostgreSQL.
alter table namespaces add column retention_ms integer not null default 2592000000;
alter table namespaces add column updated_at integer not null default 0;
