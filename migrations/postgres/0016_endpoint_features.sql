-- The protocol features an endpoint version's handler supports beyond the
-- baseline (docs/protocol.md §1.5), as a JSON array of names: `history_pages`
-- lets the server send it paged pushes (§5.10). '[]': none.
alter table endpoints add column features text not null default '[]';
