//! Test helpers: a temporary store of each backend, and [`on_every_store!`] to run one test on each.

use super::{PgStore, SledStore};

#[path = "../../tests/common/postgres.rs"]
pub(super) mod harness;

/// A sled store in a temporary database.
pub(super) fn temp_sled() -> SledStore {
    SledStore::from_db(sled::Config::new().temporary(true).open().expect("temporary sled database"))
        .expect("temporary sled store")
}

/// A PostgreSQL store on a fresh database of the test server, or `None` when PostgreSQL is not installed (see
/// `tests/common/postgres.rs`).
pub(super) async fn temp_pg() -> Option<PgStore> {
    let url = harness::fresh_database().await?;
    Some(PgStore::connect(&url, 8).await.expect("connect to the test database"))
}

/// Defines, for each `async fn name(store: &dyn Store)` listed, the tests `name::sled` and `name::postgres`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sled() {
                super::$name(&crate::store::testing::temp_sled()).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(store) = crate::store::testing::temp_pg().await {
                    super::$name(&store).await;
                }
            }
        }
    )*};
}
pub(super) use on_every_store;
