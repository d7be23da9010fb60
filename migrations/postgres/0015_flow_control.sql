-- Per-endpoint flow control (src/flow.rs, src/dispatch/flow.rs).
--
-- * `endpoints.flow` holds a version's settings as JSON: `rate_limit`
--   and `concurrency_keys` ('{}': none).
-- * `flow_slots`: the concurrency-key slots held by pushes in flight, one
--   row per (queue, evaluated key, slot number below the key's limit). A
--   push takes a free slot number with one upsert that succeeds only where
--   the row's lease has run out; it deletes its row when its answer is in.
--   `node` renews the leases of the slots its pushes hold, so a killed
--   node's slots free up when `expires_at` (ms) passes.
-- * `flow_buckets`: one token bucket per endpoint version with a rate
--   limit: `tokens` left at `updated_at` (ms); refilled on each take.
alter table endpoints add column flow text not null default '{}';

create table flow_slots (
    namespace text not null,
    task_queue text not null,
    key text not null,
    slot bigint not null,
    holder text not null,
    node text not null,
    expires_at bigint not null,
    constraint flow_slots_pkey primary key (namespace, task_queue, key, slot)
);
create index flow_slots_node on flow_slots (node);

create table flow_buckets (
    namespace text not null,
    task_queue text not null,
    version text not null,
    tokens double precision not null,
    updated_at bigint not null,
    constraint flow_buckets_pkey primary key (namespace, task_queue, version)
);
