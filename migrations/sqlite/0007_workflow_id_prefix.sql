-- Nothing to add on SQLite: text compares by bytes already, so
-- `runs_by_workflow_id` (namespace, workflow_id, …) serves the byte-order
-- range that `WorkflowId STARTS_WITH` compiles to. The file keeps the two
-- backends' migration numbers in step with
-- migrations/postgres/0007_workflow_id_prefix.sql.
select 1;
