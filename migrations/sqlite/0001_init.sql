-- Baton's schema on SQLite (`baton dev`, embedded).
--
-- The same tables, columns, constraint names and indexes as
-- migrations/postgres/0001_init.sql, which explains each decision; one store
-- implementation serves both. Differences, and why:
--
-- * Tables are `strict`, so SQLite enforces the declared types the way
--   PostgreSQL does instead of storing whatever it is given. Strict tables
--   only know `integer` and `text`: times and counters are `integer`
--   (64-bit, milliseconds for times) and `is_current` is 0 or 1.
-- * SQLite has one writer at a time, so claims need no row locks; the store
--   opens write transactions with `begin immediate` to take the write lock
--   up front.

create table namespaces (
    name text not null,
    description text not null default '',
    created_at integer not null,
    constraint namespaces_pkey primary key (name)
) strict;

create table endpoints (
    namespace text not null,
    task_queue text not null,
    version text not null,
    url text not null,
    -- A JSON array of `whsec_...` signing secrets.
    secrets text not null,
    max_concurrency integer not null,
    is_current integer not null,
    created_at integer not null,
    updated_at integer not null,
    constraint endpoints_pkey primary key (namespace, task_queue, version)
) strict;

-- At most one current version per queue.
create unique index endpoints_current on endpoints (namespace, task_queue) where is_current;

create table runs (
    run_id text not null,
    namespace text not null,
    workflow_id text not null,
    workflow_type text not null,
    task_queue text not null,
    -- `RunStatus::as_str`.
    status text not null,
    start_time integer not null,
    close_time integer,
    history_length integer not null,
    request_id text,
    -- The endpoint version the run is pinned to (copied from the snapshot).
    pinned_version text,
    version integer not null,
    -- The serde_json `RunState` snapshot.
    state text not null,
    created_at integer not null,
    updated_at integer not null,
    constraint runs_pkey primary key (run_id)
) strict;

-- At most one open run per workflow id.
create unique index runs_open_workflow_id on runs (namespace, workflow_id)
    where status = 'RUNNING';
create index runs_by_start_time on runs (namespace, start_time desc, run_id desc);
create index runs_open_by_version on runs (namespace, task_queue, pinned_version)
    where status = 'RUNNING';
create index runs_by_workflow_id on runs (namespace, workflow_id, start_time desc);
create index runs_by_request_id on runs (namespace, workflow_id, request_id)
    where request_id is not null;

-- The history; `data` is the whole serde_json `Event`.
create table events (
    run_id text not null,
    event_id integer not null,
    event_type text not null,
    event_time integer not null,
    data text not null,
    constraint events_pkey primary key (run_id, event_id)
) strict;

-- Durable future work (the transactional outbox).
create table tasks (
    task_id text not null,
    namespace text not null,
    run_id text not null,
    task_key text not null,
    queue text not null,
    payload text not null,
    visible_at integer not null,
    lease_ms integer not null,
    claims integer not null default 0,
    created_at integer not null,
    constraint tasks_pkey primary key (task_id),
    constraint tasks_run_id_task_key_key unique (run_id, task_key)
) strict;

create index tasks_due on tasks (queue, visible_at);
