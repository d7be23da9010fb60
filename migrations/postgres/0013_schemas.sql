-- The JSON Schemas an endpoint version publishes for its inputs (a JSON
-- object, `schema::Schemas`); `{}` is none.
alter table endpoints add column schemas text not null default '{}';
