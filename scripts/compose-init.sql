-- Run once by the postgres image when its data volume is new: the tests'
-- database next to the service's own (POSTGRES_DB).
create database "message-api-test" owner "message-api";
