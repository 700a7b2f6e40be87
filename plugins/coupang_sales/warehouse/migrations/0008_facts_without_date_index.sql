-- 0008: the fact load writes one index less (issue #29).
--
-- collected_facts_by_date (channel, account_id, fact_kind, fact_date) serves no statement: the load diffs an
-- extract against every stored fact of the account's kinds (one scan, the date a filter of the join), and
-- reads a group's facts through collected_facts_by_group. Every fact written paid for it: on a first load of
-- 1,000,000 Rocket facts the INSERT took 15.5-18 s with it and 9.5 s without. A query of facts by date goes
-- through the primary key's (channel, account_id, fact_kind) prefix instead; recreate the index if one is
-- frequent: nothing here depends on its absence.
DROP INDEX IF EXISTS sales.collected_facts_by_date;
