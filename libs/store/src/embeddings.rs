//! Stored embeddings of resolved tickets and knowledge articles, under the
//! tenant's row-level security.
//!
//! Each vector is stored with its model's id, its dimension and a digest of
//! the text it embeds. The text of a ticket is `subject \n description \n
//! resolution` and of an article `title \n body` — the same texts
//! `aia_embed::{ticket_text, article_text}` make — so Postgres can tell
//! which rows still lack an up-to-date vector by computing the digest
//! itself.

use aia_events::TenantId;

use crate::{Client, StoreError, search_query, tenant_transaction};

/// Which corpus a vector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    Tickets,
    Articles,
}

impl Corpus {
    fn table(self) -> &'static str {
        match self {
            Self::Tickets => "ticket_embeddings",
            Self::Articles => "article_embeddings",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Self::Tickets => "ticket_id",
            Self::Articles => "article_id",
        }
    }

    /// The source table and the SQL of its embedded text.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Self::Tickets => (
                "ticket_history",
                "s.subject || E'\\n' || s.description || E'\\n' || s.resolution",
            ),
            Self::Articles => ("knowledge_articles", "s.title || E'\\n' || s.body"),
        }
    }
}

/// An item whose vector for a model is missing or out of date.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: String,
    pub text: String,
}

/// One stored vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub vector: Vec<f32>,
    /// The language its item is searched by words in (ISO 639-1), as its
    /// source row records it; `None` when that row is gone.
    pub language: Option<String>,
}

/// A vector to store.
#[derive(Debug, Clone, Copy)]
pub struct NewVector<'a> {
    pub id: &'a str,
    pub model: &'a str,
    pub vector: &'a [f32],
    pub content_sha256: &'a [u8; 32],
}

fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The floats of a stored vector (little-endian f32s).
fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Stores (or replaces) vectors of one tenant in one transaction. A vector
/// whose dimension differs from the model's other vectors is refused.
pub async fn upsert(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    vectors: &[NewVector<'_>],
) -> Result<(), StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    let sql = format!(
        "insert into {table} (tenant_id, {id}, model, dim, content_sha256, vector)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id, model, {id}) do update
            set dim = excluded.dim, content_sha256 = excluded.content_sha256,
                vector = excluded.vector, embedded_at = now()
          where {table}.content_sha256 <> excluded.content_sha256",
        table = corpus.table(),
        id = corpus.id_column()
    );
    let statement = tx.prepare(&sql).await?;
    for vector in vectors {
        let dim = i32::try_from(vector.vector.len())
            .map_err(|_| StoreError::Corrupt("vector too long".into()))?;
        tx.execute(
            &statement,
            &[
                &tenant.as_str(),
                &vector.id,
                &vector.model,
                &dim,
                &vector.content_sha256.as_slice(),
                &to_bytes(vector.vector),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Items of the tenant without an up-to-date vector of `model`, in id
/// order after `after` (so a long run resumes where it stopped).
pub async fn pending(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    model: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Pending>, StoreError> {
    let (source, text) = corpus.source();
    let sql = format!(
        "select s.{id}, {text}
           from {source} s
          where s.tenant_id = $1 and ($3::text is null or s.{id} > $3)
            and not exists (select 1 from {table} e
                             where e.tenant_id = s.tenant_id and e.model = $2 and e.{id} = s.{id}
                               and e.content_sha256 = sha256(convert_to({text}, 'UTF8')))
          order by s.{id}
          limit $4",
        id = corpus.id_column(),
        table = corpus.table(),
    );
    let tx = tenant_transaction(client, tenant).await?;
    let rows = tx
        .query(&sql, &[&tenant.as_str(), &model, &after, &limit])
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| Pending {
            id: row.get(0),
            text: row.get(1),
        })
        .collect())
}

/// How many items of the tenant lack an up-to-date vector of `model`, and
/// how many there are.
pub async fn coverage(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    model: &str,
) -> Result<(i64, i64), StoreError> {
    let (source, text) = corpus.source();
    let sql = format!(
        "select count(*) filter (where not exists (
                    select 1 from {table} e
                     where e.tenant_id = s.tenant_id and e.model = $2 and e.{id} = s.{id}
                       and e.content_sha256 = sha256(convert_to({text}, 'UTF8')))),
                count(*)
           from {source} s where s.tenant_id = $1",
        id = corpus.id_column(),
        table = corpus.table(),
    );
    let tx = tenant_transaction(client, tenant).await?;
    let row = tx.query_one(&sql, &[&tenant.as_str(), &model]).await?;
    tx.commit().await?;
    Ok((row.get(0), row.get(1)))
}

/// Every vector of `model` in the tenant's corpus. A stored vector whose
/// size disagrees with its recorded dimension is an error, never compared.
pub async fn load(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    model: &str,
) -> Result<Vec<Stored>, StoreError> {
    let (source, _) = corpus.source();
    let sql = format!(
        "select e.{id}, e.dim, e.vector, s.language
           from {table} e
           left join {source} s on s.tenant_id = e.tenant_id and s.{id} = e.{id}
          where e.tenant_id = $1 and e.model = $2",
        id = corpus.id_column(),
        table = corpus.table(),
    );
    // Bounded like a search by words, and in one round trip.
    let rows = search_query(client, tenant, "2s", &sql, &[&tenant.as_str(), &model]).await?;
    rows.into_iter()
        .map(|row| {
            let id: String = row.get(0);
            let dim: i32 = row.get(1);
            let bytes: &[u8] = row.get(2);
            let dim = usize::try_from(dim).unwrap_or(0);
            if bytes.len() != dim * 4 {
                return Err(StoreError::Corrupt(format!(
                    "vector of {id} is not {dim} floats"
                )));
            }
            Ok(Stored {
                id,
                vector: from_bytes(bytes),
                language: row.get(3),
            })
        })
        .collect()
}

/// Removes the tenant's vectors of every model but `keep`, once `keep`
/// covers the corpus. Returns how many were removed.
pub async fn retire_other_models(
    client: &mut Client,
    tenant: &TenantId,
    keep: &str,
) -> Result<u64, StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    let mut removed = 0;
    for corpus in [Corpus::Tickets, Corpus::Articles] {
        removed += tx
            .execute(
                &format!(
                    "delete from {} where tenant_id = $1 and model <> $2",
                    corpus.table()
                ),
                &[&tenant.as_str(), &keep],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(removed)
}
