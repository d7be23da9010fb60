-- Payloads stored by reference (docs/protocol.md §9.1), once per namespace
-- and digest: `data` is the payload's compact JSON, `sha256` its lowercase
-- hex digest. `touched_at` (ms) moves to now whenever a node stores the
-- payload again, so the sweep of unreferenced payloads (older than an hour)
-- never takes one a commit is about to reference.
create table payloads (
    namespace text not null,
    sha256 text not null,
    data text not null,
    touched_at integer not null,
    constraint payloads_pkey primary key (namespace, sha256)
) strict;

-- Which runs reference which payloads: written by the commit that writes
-- the reference (in an event or the snapshot), deleted with the run. The
-- payload route serves a run only the digests linked to it.
create table payload_links (
    namespace text not null,
    sha256 text not null,
    run_id text not null,
    constraint payload_links_pkey primary key (namespace, sha256, run_id)
) strict;
create index payload_links_by_run on payload_links (run_id);
