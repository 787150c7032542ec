//! S3 multipart uploads addressed by their id, so that the id can be stored with the upload's
//! lease and the upload aborted by whichever process finds it abandoned. `object_store`'s own
//! `put_multipart` keeps the id to itself; here the upload is started with the low-level
//! [`MultipartStore`] and handed to [`object_store::WriteMultipart`] through [`Resumed`].

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{MultipartId, MultipartUpload, PutPayload, PutResult, UploadPart};

/// A store's multipart uploads, under the key prefix its objects are stored with.
#[derive(Clone)]
pub(super) struct Multiparts {
    store: Arc<dyn MultipartStore>,
    prefix: Path,
}

impl std::fmt::Debug for Multiparts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiparts")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Multiparts {
    /// The multipart uploads of `store`, whose objects' keys start with `prefix`.
    pub(super) fn new(store: Arc<dyn MultipartStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
        }
    }

    /// The store's own key of `key`.
    fn full(&self, key: &Path) -> Path {
        self.prefix.parts().chain(key.parts()).collect()
    }

    /// Starts a multipart upload to `key`; its id.
    pub(super) async fn create(&self, key: &Path) -> object_store::Result<MultipartId> {
        self.store.create_multipart(&self.full(key)).await
    }

    /// The upload `id` to `key`, to write its parts.
    pub(super) fn resume(&self, key: &Path, id: &str) -> Box<dyn MultipartUpload> {
        Box::new(Resumed {
            store: self.store.clone(),
            path: self.full(key),
            id: id.to_owned(),
            parts: Arc::default(),
            next: 0,
        })
    }

    /// Uploads part `index` (from 0) of the upload `id` to `key`; the part's id.
    pub(super) async fn put_part(
        &self,
        key: &Path,
        id: &str,
        index: usize,
        data: PutPayload,
    ) -> object_store::Result<String> {
        let part = self
            .store
            .put_part(&self.full(key), &id.to_owned(), index, data)
            .await?;
        Ok(part.content_id)
    }

    /// Completes the upload `id` to `key` from the parts with `part_ids`, in order.
    pub(super) async fn complete(
        &self,
        key: &Path,
        id: &str,
        part_ids: &[String],
    ) -> object_store::Result<PutResult> {
        let parts = part_ids
            .iter()
            .map(|content_id| PartId {
                content_id: content_id.clone(),
            })
            .collect();
        self.store
            .complete_multipart(&self.full(key), &id.to_owned(), parts)
            .await
    }

    /// Aborts the upload `id` to `key`, deleting the parts written.
    pub(super) async fn abort(&self, key: &Path, id: &str) -> object_store::Result<()> {
        self.store
            .abort_multipart(&self.full(key), &id.to_owned())
            .await
    }
}

/// A multipart upload started elsewhere, written part by part.
struct Resumed {
    store: Arc<dyn MultipartStore>,
    path: Path,
    id: MultipartId,
    /// Each part's id once it is written, by part index.
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
    next: usize,
}

impl std::fmt::Debug for Resumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumed")
            .field("path", &self.path)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl MultipartUpload for Resumed {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.next;
        self.next += 1;
        let (store, path, id, parts) = (
            self.store.clone(),
            self.path.clone(),
            self.id.clone(),
            self.parts.clone(),
        );
        async move {
            let part = store.put_part(&path, &id, index, data).await?;
            let mut parts = parts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if parts.len() <= index {
                parts.resize(index + 1, None);
            }
            parts[index] = Some(part);
            Ok(())
        }
        .boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts = std::mem::take(
            &mut *self
                .parts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let parts = parts
            .into_iter()
            .collect::<Option<Vec<PartId>>>()
            .ok_or_else(|| object_store::Error::Generic {
                store: "multipart",
                source: "a part was not written before the upload was completed".into(),
            })?;
        self.store
            .complete_multipart(&self.path, &self.id, parts)
            .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store.abort_multipart(&self.path, &self.id).await
    }
}
