-- Inbound webhook sources and their delivery log.
--
-- * `webhook_sources.doc` is the JSON of `webhook::Source` (scheme,
--   secrets, tolerance, routing rules), which the store never looks inside.
--   The secrets are kept as given: HMAC verification needs them.
-- * `webhook_deliveries` has one row per request a source received (and
--   per replay), newest last by `delivery_seq` (a UUIDv7, so text order is
--   arrival order). `doc` is the JSON of `store::Delivery`: the outcome,
--   the matched rule and action, the run, the error, and, for verified
--   deliveries only, the headers and body a replay needs. A refused
--   delivery is logged without its body.
-- * Deleting a source deletes its deliveries (in one transaction).
create table webhook_sources (
    namespace text not null,
    source_id text not null,
    doc text not null,
    created_at bigint not null,
    constraint webhook_sources_pkey primary key (namespace, source_id)
);

create table webhook_deliveries (
    namespace text not null,
    source_id text not null,
    delivery_seq text not null,
    received_at bigint not null,
    doc text not null,
    constraint webhook_deliveries_pkey primary key (namespace, source_id, delivery_seq)
);
