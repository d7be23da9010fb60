-- Custom search attributes: the registry, the slot columns on `runs`
-- and their indexes. The design is explained in
-- migrations/postgres/0004_search_attributes.sql.

create table search_attributes (
    namespace text not null,
    name text not null,
    kind text not null,
    slot integer not null,
    removed integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    constraint search_attributes_pkey primary key (namespace, name, kind)
);

create unique index search_attributes_slot on search_attributes (namespace, kind, slot);
create unique index search_attributes_active on search_attributes (namespace, name)
    where removed = 0;

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
alter table runs add column sa_int_1 integer;
alter table runs add column sa_int_2 integer;
alter table runs add column sa_int_3 integer;
alter table runs add column sa_double_1 real;
alter table runs add column sa_double_2 real;
alter table runs add column sa_double_3 real;
alter table runs add column sa_bool_1 integer;
alter table runs add column sa_bool_2 integer;
alter table runs add column sa_bool_3 integer;
alter table runs add column sa_datetime_1 integer;
alter table runs add column sa_datetime_2 integer;
alter table runs add column sa_datetime_3 integer;
alter table runs add column sa_keyword_list_1 text;
alter table runs add column sa_keyword_list_2 text;
alter table runs add column sa_keyword_list_3 text;

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

-- TemporalScheduledById, as on PostgreSQL.
alter table runs add column scheduled_by_id text;
update runs set scheduled_by_id = coalesce(
        json_extract(state, '$.state.chain.memo.TemporalScheduledById'),
        json_extract(state, '$.chain.memo.TemporalScheduledById'))
where state like '%"TemporalScheduledById"%';
create index runs_by_scheduled_by_id on runs (namespace, scheduled_by_id, start_time desc, run_id desc)
    where scheduled_by_id is not null;
