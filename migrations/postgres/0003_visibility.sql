-- List filters (src/visibility, compiled by src/store/query.rs): the
-- listing columns a filter may name that `runs` lacked, and indexes for
-- the common shapes of query; and namespace retention. Mirrored in migrations/sqlite/0003_visibility.sql.
--
-- Index design. Every list query is scoped to one namespace and, unless
-- it says ORDER BY, pages newest first on (start_time desc, run_id desc),
-- so each index leads with `namespace`, then the column a filter most
-- often pins by equality, then the default order: a query pinning that
-- column reads its index in order and stops after one page, whatever the
-- table's size. Filters on other columns narrow the rows such an index
-- yields (or PostgreSQL combines two indexes in a bitmap). Keyword
-- comparisons other than equality and keyword ORDER BY compare bytes
-- (`collate "C"`), which no index here serves; they scan the namespace's
-- rows in `runs_by_start_time` order.

-- A child's parent, copied from the snapshot at insert (a run's parent
-- never changes). Null for runs that are not children.
alter table runs add column parent_workflow_id text;
alter table runs add column parent_run_id text;

-- Existing children get their parent from the snapshot: `{"v":1,
-- "state":{…}}`, or the bare state of rows from before versions.
update runs set
    parent_workflow_id = coalesce(state::jsonb #>> '{state,parent,workflow_id}',
        state::jsonb #>> '{parent,workflow_id}'),
    parent_run_id = coalesce(state::jsonb #>> '{state,parent,run_id}',
        state::jsonb #>> '{parent,run_id}')
where state like '%"parent":{%';

-- WorkflowType = … (and … AND ExecutionStatus = …), newest first.
create index runs_by_type on runs (namespace, workflow_type, start_time desc, run_id desc);

-- ExecutionStatus = …, newest first.
create index runs_by_status on runs (namespace, status, start_time desc, run_id desc);

-- CloseTime ranges and ORDER BY CloseTime (open runs, whose close_time is
-- null, come first in descending order, as the default `nulls first` of a
-- descending index has them).
create index runs_by_close_time on runs (namespace, close_time desc, run_id desc);

-- ParentWorkflowId = …: a child's siblings.
create index runs_by_parent on runs (namespace, parent_workflow_id)
    where parent_workflow_id is not null;

-- Namespaces keep closed runs for `retention_ms` (Temporal's workflow
-- execution retention); rows from before get 30 days, production's usual
-- choice. `updated_at` is the audit time of the last update.
alter table namespaces add column retention_ms bigint not null default 2592000000;
alter table namespaces add column updated_at bigint not null default 0;
