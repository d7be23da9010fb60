-- The task queue a push row is for (the run's for a workflow task, the
-- activity's own for an activity task; null for timer and transfer rows),
-- filled at write time so the queue-depth gauges group by it without
-- decoding payloads or joining runs. Rows written before this migration
-- read as null until they are written again (every re-delivery rewrites
-- its row).
alter table tasks add column task_queue text;
