-- Schedules (Temporal's): one row per schedule, holding what its owner
-- wrote and what it has done, and the due time of its next tick.
--
-- * `doc` is the JSON of `schedule::Schedule` and `schedule::Info` together
--   (`{"schedule":…,"info":…}`), which the store never looks inside.
-- * `version` is the optimistic-concurrency guard and the conflict token
--   an update may name: every write names the version it read and bumps
--   it, so of two nodes ticking the same schedule one commits.
-- * `visible_at` is the schedule's one due row, claimed with a lease as
--   the `tasks` rows are: a claim moves it to now + lease, and the tick's
--   commit sets it to the next wake-up (null: none until something changes
--   the schedule). A node that dies mid-tick lets the lease run out.
-- * `paused` is the listing filter's copy of `doc`'s state (0 or 1).
create table schedules (
    namespace text not null,
    schedule_id text not null,
    doc text not null,
    version bigint not null,
    visible_at bigint,
    paused bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint schedules_pkey primary key (namespace, schedule_id)
);

create index schedules_due on schedules (visible_at) where visible_at is not null;
