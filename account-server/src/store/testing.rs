//! Test helpers: a temporary store of each backend, and [`on_every_store!`] to run one test on each.

use super::SledStore;

/// A sled store in a temporary database.
pub(super) fn temp_sled() -> SledStore {
    SledStore::from_db(sled::Config::new().temporary(true).open().expect("temporary sled database"))
        .expect("temporary sled store")
}

/// Defines, for each `async fn name(store: &dyn Store)` listed, the tests `name::sled` and `name::postgres`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sled() {
                super::$name(&crate::store::testing::temp_sled()).await;
            }
        }
    )*};
}
pub(super) use on_every_store;
