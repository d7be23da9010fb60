-- Baton's schema on PostgreSQL.
--
-- Conventions, shared with migrations/sqlite/0001_init.sql so that one
-- store implementation can serve both:
--
-- * Every time is a `bigint` of milliseconds since the Unix epoch, the
--   representation of `crate::time::Timestamp`. Domain times (start_time,
--   visible_at, ...) come from the engine's clock; the audit columns
--   `created_at` / `updated_at` of rows the server manages itself are written
--   by the server's wall clock.
-- * Identifiers are `text`, run ids included (their canonical hyphenated
--   UUID form, which sorts like the UUID's bytes, so UUID v7 run ids sort by
--   creation time). One representation on both backends keeps the
--   conversion in one place; the cost is 36 bytes per id instead of 16.
-- * Documents the store never looks inside (a run's snapshot, an event, a
--   task) are JSON in `text` columns, not `jsonb`: they are written far more
--   often than searched, and text keeps the bytes exactly as serde wrote
--   them, without the cost of parsing into jsonb on every commit.
-- * Constraint and index names are deliberate: the store maps unique
--   violations to `store::Error::AlreadyExists` by name.
-- * Every hot table leads with (namespace, workflow id) or run id, so the
--   schema stays shardable by those keys (Citus-style) and portable to
--   PostgreSQL-compatible distributed databases.

-- An isolation unit. Workflow ids, endpoints and task queues are unique per
-- namespace.
create table namespaces (
    name text not null,
    description text not null default '',
    created_at bigint not null,
    constraint namespaces_pkey primary key (name)
);

-- Handler URLs, per task queue and version. A queue may have several
-- versions registered at once; exactly one of them (the last upserted) is
-- current and receives new runs, while a run stays pinned to the version it
-- started on.
create table endpoints (
    namespace text not null,
    task_queue text not null,
    version text not null,
    url text not null,
    -- A JSON array of `whsec_...` signing secrets: one signature per secret
    -- on every push, so secrets rotate without downtime.
    secrets text not null,
    max_concurrency bigint not null,
    is_current boolean not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint endpoints_pkey primary key (namespace, task_queue, version)
);

-- At most one current version per queue. An upsert clears the flag on the
-- other versions before it sets it on its own row, in one transaction.
create unique index endpoints_current on endpoints (namespace, task_queue) where is_current;

-- One row per run: the listing columns plus the engine's snapshot
-- (`state`, a serde_json `RunState`), guarded by `version` for optimistic
-- concurrency: every commit names the version it read and bumps it.
create table runs (
    run_id text not null,
    namespace text not null,
    workflow_id text not null,
    workflow_type text not null,
    task_queue text not null,
    -- `RunStatus::as_str`: RUNNING, COMPLETED, FAILED, CANCELED,
    -- TERMINATED, CONTINUED_AS_NEW, TIMED_OUT.
    status text not null,
    start_time bigint not null,
    close_time bigint,
    -- The number of events in `events` for this run.
    history_length bigint not null,
    -- The idempotency key of the start request that created the run.
    request_id text,
    -- The endpoint version of `task_queue` the run is pinned to (a copy of
    -- the snapshot's, for counting open runs per version); null until an
    -- unpinned run's first push.
    pinned_version text,
    version bigint not null,
    state text not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint runs_pkey primary key (run_id)
);

-- At most one open run per workflow id (DESIGN.md). A second start with the
-- same id fails on this index; the store reports it as AlreadyExists.
create unique index runs_open_workflow_id on runs (namespace, workflow_id)
    where status = 'RUNNING';

-- Listing, newest first, with keyset pagination on (start_time, run_id).
create index runs_by_start_time on runs (namespace, start_time desc, run_id desc);

-- Open runs per endpoint version (`baton endpoint versions`, move-runs,
-- and the refusal to delete a version that still has open runs).
create index runs_open_by_version on runs (namespace, task_queue, pinned_version)
    where status = 'RUNNING';

-- The newest run of a workflow id.
create index runs_by_workflow_id on runs (namespace, workflow_id, start_time desc);

-- Idempotent starts: the run a request id already created.
create index runs_by_request_id on runs (namespace, workflow_id, request_id)
    where request_id is not null;

-- The history, append-only. `data` is the whole serde_json `Event`;
-- `event_type` and `event_time` are copies for humans running SQL.
create table events (
    run_id text not null,
    event_id bigint not null,
    event_type text not null,
    event_time bigint not null,
    data text not null,
    constraint events_pkey primary key (run_id, event_id)
);

-- Durable future work (the transactional outbox): pushes for `dispatch`
-- (queue 'push') and timers for `timers` (queue 'timer'). Rows are written
-- in the same transaction as the events that imply them.
create table tasks (
    -- A fresh UUID v4 on every upsert, so a claimer that held an older
    -- version of the row can delete exactly what it claimed and nothing
    -- newer.
    task_id text not null,
    namespace text not null,
    run_id text not null,
    -- `Task::key`: at most one row per (run, key); enqueueing a key again
    -- replaces the row, which is how timers are re-armed and why at most
    -- one workflow task per run exists.
    task_key text not null,
    queue text not null,
    -- The serde_json `Task`.
    payload text not null,
    -- Due time, and while claimed the end of the lease: a claim moves it to
    -- `now + lease_ms`, so a claimer that dies lets the row reappear.
    visible_at bigint not null,
    lease_ms bigint not null,
    claims integer not null default 0,
    created_at bigint not null,
    constraint tasks_pkey primary key (task_id),
    constraint tasks_run_id_task_key_key unique (run_id, task_key)
);

-- Claiming: the due rows of one queue, earliest first.
create index tasks_due on tasks (queue, visible_at);
