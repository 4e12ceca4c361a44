-- Every search is within one tenant. The full-text indexes become
-- (tenant_id, search) GIN indexes (btree_gin), so a query's lexemes are
-- looked up among the tenant's rows only instead of every tenant's; and a
-- tenant's vectors of one model are read from one covering index, in order,
-- instead of from heap pages scattered across all tenants (index-only scans
-- once autovacuum has marked the pages all-visible).
create extension if not exists btree_gin;

create index ticket_history_tenant_search on ticket_history using gin (tenant_id, search);
drop index ticket_history_search;
create index knowledge_articles_tenant_search on knowledge_articles using gin (tenant_id, search);
drop index knowledge_articles_search;

create index ticket_embeddings_tenant_vectors on ticket_embeddings (tenant_id, model) include (ticket_id, dim, vector);
create index article_embeddings_tenant_vectors on article_embeddings (tenant_id, model) include (article_id, dim, vector);
