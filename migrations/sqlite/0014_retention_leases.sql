-- Retention leases: one row per namespace whose closed runs a node's
-- retention deleter has claimed, holding who holds the work, until when,
-- the fence, and the deleter's progress in that namespace.
--
-- * `owner` is the node id of the holder (or the last holder); `expires_at`
--   the end of its lease (ms). A claim takes a row that has expired, or
--   that its owner renews; release on shutdown sets it to now.
-- * `epoch` is the fencing token: a claim that changes hands (or takes an
--   expired lease) bumps it, and every batch of deletes first renews the
--   lease where the epoch is still the one its holder claimed, in the
--   batch's transaction. A holder whose lease was taken deletes nothing.
-- * `runs_deleted` and `events_deleted` count what the deleter removed in
--   the namespace, across holders; `last_pass_at` is when a pass last
--   finished (its last batch came back short: the namespace caught up).
create table retention_leases (
    namespace text not null,
    owner text not null,
    epoch integer not null,
    expires_at integer not null,
    runs_deleted integer not null default 0,
    events_deleted integer not null default 0,
    last_pass_at integer,
    updated_at integer not null,
    constraint retention_leases_pkey primary key (namespace)
) strict;
