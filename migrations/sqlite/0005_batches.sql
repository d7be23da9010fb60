-- Batch jobs (Temporal's batch operations): one row per job, holding what
-- it does and how far it got, and the due time of its lease.
--
-- * `doc` is the JSON of `batch::Batch` (query, operation, counters,
--   cursor, the page taken and not yet counted), which the store never
--   looks inside; `state` is its copy for reading without decoding.
-- * `version` is the optimistic-concurrency guard. Every write names the
--   version it read and bumps it, and so does a claim: a node whose lease
--   ran out and was claimed by another fails its next write and lets go.
-- * `visible_at` is the job's due row, claimed with a lease as the
--   schedules' is: a claim moves it to now + lease, every progress commit
--   renews it, and a closed job has none. A node that dies mid-job lets
--   the lease run out and any node resumes from the committed progress.
-- * `stop_requested` (0 or 1) is written by the stop call without the
--   version, so it never races the node running the job, which reads it
--   before each run and ends the job Stopped.
-- * `request_id` makes a retried start return the job it created.
create table batches (
    namespace text not null,
    batch_id text not null,
    doc text not null,
    state text not null,
    version integer not null,
    visible_at integer,
    stop_requested integer not null default 0,
    request_id text,
    created_at integer not null,
    updated_at integer not null,
    constraint batches_pkey primary key (namespace, batch_id)
) strict;

create index batches_due on batches (visible_at) where visible_at is not null;
-- Listing: newest first, keyset by (created_at, batch_id).
create index batches_by_created_at on batches (namespace, created_at desc, batch_id desc);
