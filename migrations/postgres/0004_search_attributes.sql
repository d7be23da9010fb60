-- Custom search attributes (src/engine/search.rs, registered per
-- namespace through /api/v1/namespaces/{ns}/search-attributes). Mirrored
-- in migrations/sqlite/0004_search_attributes.sql.
--
-- Index design. A namespace's registry maps each attribute name to a typed
-- slot: one of the fixed listing columns below on `runs` (10 Keyword, 3 of
-- every other type), written by the store from the run's snapshot at every
-- commit, as the system listing columns are. Each Keyword, Int and
-- Datetime slot has a partial index leading with `namespace`, then the
-- slot, then the default order (`start_time desc, run_id desc`), holding
-- only the runs that have a value: `CustomerId = 'c1'` reads its index in
-- order and stops after a page whatever the table's size, and a range on
-- an Int or Datetime slot reads one range of its index. Double and Bool
-- slots are not indexed (a Bool splits runs in two halves, which an index
-- does not help; Doubles are rarely filtered alone); Text slots hold the
-- value's lowercased words between spaces (` big red box `) and are
-- matched with `like '% word %'`, which no b-tree serves. KeywordList
-- slots hold a JSON array of strings, matched with `@>` through a GIN
-- index on PostgreSQL and `json_each` on SQLite (same meaning).
--
-- A slot is never given to another name: a removed attribute keeps its
-- row (`removed = 1`) and its slot, so values it left on runs can only
-- answer queries for that name again if it is registered again with the
-- same type.

create table search_attributes (
    namespace text not null,
    name text not null,
    -- `SearchAttributeType`: Keyword, Text, Int, Double, Bool, Datetime,
    -- KeywordList.
    kind text not null,
    -- 1-based index among the namespace's slots of `kind`.
    slot bigint not null,
    -- 1 once removed (the row keeps the slot), 0 while registered.
    removed bigint not null default 0,
    created_at bigint not null,
    updated_at bigint not null,
    constraint search_attributes_pkey primary key (namespace, name, kind)
);

-- One name per slot, ever.
create unique index search_attributes_slot on search_attributes (namespace, kind, slot);
-- A name is registered with one type at a time.
create unique index search_attributes_active on search_attributes (namespace, name)
    where removed = 0;

-- The slots.
alter table runs add column sa_keyword_1 text;
alter table runs add column sa_keyword_2 text;
alter table runs add column sa_keyword_3 text;
alter table runs add column sa_keyword_4 text;
alter table runs add column sa_keyword_5 text;
alter table runs add column sa_keyword_6 text;
alter table runs add column sa_keyword_7 text;
alter table runs add column sa_keyword_8 text;
alter table runs add column sa_keyword_9 text;
alter table runs add column sa_keyword_10 text;
alter table runs add column sa_text_1 text;
alter table runs add column sa_text_2 text;
alter table runs add column sa_text_3 text;
alter table runs add column sa_int_1 bigint;
alter table runs add column sa_int_2 bigint;
alter table runs add column sa_int_3 bigint;
alter table runs add column sa_double_1 double precision;
alter table runs add column sa_double_2 double precision;
alter table runs add column sa_double_3 double precision;
alter table runs add column sa_bool_1 bigint;
alter table runs add column sa_bool_2 bigint;
alter table runs add column sa_bool_3 bigint;
alter table runs add column sa_datetime_1 bigint;
alter table runs add column sa_datetime_2 bigint;
alter table runs add column sa_datetime_3 bigint;
alter table runs add column sa_keyword_list_1 text;
alter table runs add column sa_keyword_list_2 text;
alter table runs add column sa_keyword_list_3 text;

-- The slots' indexes (see above).
create index runs_by_sa_keyword_1 on runs (namespace, sa_keyword_1, start_time desc, run_id desc)
    where sa_keyword_1 is not null;
create index runs_by_sa_keyword_2 on runs (namespace, sa_keyword_2, start_time desc, run_id desc)
    where sa_keyword_2 is not null;
create index runs_by_sa_keyword_3 on runs (namespace, sa_keyword_3, start_time desc, run_id desc)
    where sa_keyword_3 is not null;
create index runs_by_sa_keyword_4 on runs (namespace, sa_keyword_4, start_time desc, run_id desc)
    where sa_keyword_4 is not null;
create index runs_by_sa_keyword_5 on runs (namespace, sa_keyword_5, start_time desc, run_id desc)
    where sa_keyword_5 is not null;
create index runs_by_sa_keyword_6 on runs (namespace, sa_keyword_6, start_time desc, run_id desc)
    where sa_keyword_6 is not null;
create index runs_by_sa_keyword_7 on runs (namespace, sa_keyword_7, start_time desc, run_id desc)
    where sa_keyword_7 is not null;
create index runs_by_sa_keyword_8 on runs (namespace, sa_keyword_8, start_time desc, run_id desc)
    where sa_keyword_8 is not null;
create index runs_by_sa_keyword_9 on runs (namespace, sa_keyword_9, start_time desc, run_id desc)
    where sa_keyword_9 is not null;
create index runs_by_sa_keyword_10 on runs (namespace, sa_keyword_10, start_time desc, run_id desc)
    where sa_keyword_10 is not null;
create index runs_by_sa_int_1 on runs (namespace, sa_int_1, start_time desc, run_id desc)
    where sa_int_1 is not null;
create index runs_by_sa_int_2 on runs (namespace, sa_int_2, start_time desc, run_id desc)
    where sa_int_2 is not null;
create index runs_by_sa_int_3 on runs (namespace, sa_int_3, start_time desc, run_id desc)
    where sa_int_3 is not null;
create index runs_by_sa_datetime_1 on runs (namespace, sa_datetime_1, start_time desc, run_id desc)
    where sa_datetime_1 is not null;
create index runs_by_sa_datetime_2 on runs (namespace, sa_datetime_2, start_time desc, run_id desc)
    where sa_datetime_2 is not null;
create index runs_by_sa_datetime_3 on runs (namespace, sa_datetime_3, start_time desc, run_id desc)
    where sa_datetime_3 is not null;
create index runs_by_sa_keyword_list_1 on runs using gin ((sa_keyword_list_1::jsonb)) where sa_keyword_list_1 is not null;
create index runs_by_sa_keyword_list_2 on runs using gin ((sa_keyword_list_2::jsonb)) where sa_keyword_list_2 is not null;
create index runs_by_sa_keyword_list_3 on runs using gin ((sa_keyword_list_3::jsonb)) where sa_keyword_list_3 is not null;

-- TemporalScheduledById: the schedule that started a run (the memo key the
-- scheduler writes), a system attribute; runs from before get it from
-- their snapshot.
alter table runs add column scheduled_by_id text;
update runs set scheduled_by_id = coalesce(
        state::jsonb #>> '{state,chain,memo,TemporalScheduledById}',
        state::jsonb #>> '{chain,memo,TemporalScheduledById}')
where state like '%"TemporalScheduledById"%';
create index runs_by_scheduled_by_id on runs (namespace, scheduled_by_id, start_time desc, run_id desc)
    where scheduled_by_id is not null;
