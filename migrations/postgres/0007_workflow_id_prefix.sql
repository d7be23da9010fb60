-- `WorkflowId STARTS_WITH 'p'` compiles to a byte-order range
-- (`workflow_id collate "C" >= 'p' and … < successor`, src/store/query.rs),
-- as do WorkflowId order comparisons; this index serves both, so a prefix
-- that picks a few runs reads a few index entries instead of scanning the
-- namespace in start-time order. Mirrored in
-- migrations/sqlite/0007_workflow_id_prefix.sql.
create index runs_by_workflow_id_bytes on runs (namespace, workflow_id collate "C");
