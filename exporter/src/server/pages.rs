//! The `/metrics` page of one collection, per format, as text and as gzip:
//! made once by the first request that needs it, shared (as `Bytes`, never
//! copied) by every request of the same collection, and evicted when the
//! collection's last user drops it, so an idle exporter keeps no page (the
//! `Bytes` of responses still being sent live on until sent). The next
//! buffers are sized from the previous page. (The `/api/v1/inventory`
//! document is the collection's own: `Collection::inventory_json`.)
//! What is kept between collections: the label text of every program and
//! map ([`Fragments`], about 170 bytes per map, 250 per program), so the
//! next page formats only the values and the objects that are new or changed.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use axum::body::Bytes;
use tokio::sync::OnceCell;

use super::gzip::{gzip, GzipError};
use crate::{
    collect::Collection,
    render::{
        fragments::Fragments,
        prometheus::{render_page_with, Format, RenderOptions},
        server_stats::ServerStats,
    },
    sync::lock,
};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the render task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("compressing the page failed: {0}")]
    Gzip(#[from] GzipError),
}

#[derive(Default)]
pub(super) struct PageCache {
    latest: Mutex<HashMap<Format, Arc<CollectionPages>>>,
    /// Label text per object from the previous pages (both formats).
    fragments: Arc<Mutex<Fragments>>,
    /// Length of the latest text and gzip page per format.
    sizes: Mutex<HashMap<Format, (usize, usize)>>,
    renders: AtomicU64,
    compressions: AtomicU64,
}

/// The pages of one collection in one format.
struct CollectionPages {
    collection: u64,
    text: OnceCell<Bytes>,
    gzip: OnceCell<Bytes>,
}

impl PageCache {
    /// The page of `collection` in `format`, gzip-compressed if `gzip`.
    pub async fn page(
        &self,
        collection: Arc<Collection>,
        options: &RenderOptions,
        format: Format,
        gzip: bool,
    ) -> Result<Bytes, PageError> {
        let pages = self.pages_of(collection.stats.collections_total, format);
        let text = pages
            .text
            .get_or_try_init(|| self.render(collection, options.clone(), format))
            .await?;
        if !gzip {
            return Ok(text.clone());
        }
        let text = text.clone();
        Ok(pages
            .gzip
            .get_or_try_init(|| self.compress(text, format))
            .await?
            .clone())
    }

    /// Pages rendered so far, and compressed.
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64) {
        (
            self.renders.load(Ordering::Relaxed),
            self.compressions.load(Ordering::Relaxed),
        )
    }

    /// Drops the pages of a collection nobody uses any more.
    pub fn evict(&self, collection: u64) {
        lock(&self.latest).retain(|_, pages| pages.collection != collection);
    }

    /// Objects with kept label text.
    #[cfg(test)]
    pub fn fragments(&self) -> usize {
        lock(&self.fragments).len()
    }

    /// Formats with cached pages.
    #[cfg(test)]
    pub fn cached(&self) -> usize {
        lock(&self.latest).len()
    }

    fn pages_of(&self, collection: u64, format: Format) -> Arc<CollectionPages> {
        let mut latest = lock(&self.latest);
        let cached = latest.get(&format);
        if let Some(pages) = cached {
            if pages.collection == collection {
                return Arc::clone(pages);
            }
        }
        let pages = Arc::new(CollectionPages {
            collection,
            text: OnceCell::new(),
            gzip: OnceCell::new(),
        });
        // A slow request of an older collection renders for itself: it must
        // not displace the pages of a newer one still in use.
        if cached.is_none_or(|newer| newer.collection < collection) {
            latest.insert(format, Arc::clone(&pages));
        }
        pages
    }

    async fn render(
        &self,
        collection: Arc<Collection>,
        options: RenderOptions,
        format: Format,
    ) -> Result<Bytes, PageError> {
        let previous = self.size(format).0;
        let fragments = Arc::clone(&self.fragments);
        let text = crate::privileges::spawn_blocking(move || {
            // A little room for growth; an empty buffer gets the renderer's estimate.
            let mut out = String::with_capacity(previous + previous / 32);
            // Taken when the collection's page is made: its scrapes share it.
            let server = ServerStats {
                process: super::process::process_stats(),
                rejected: crate::http::rejections::counts(),
            };
            // Pages of two formats made at once: the second from scratch.
            let mut kept = fragments.try_lock();
            let mut scratch = Fragments::default();
            let fragments = match kept.as_deref_mut() {
                Ok(kept) => kept,
                Err(_) => &mut scratch,
            };
            render_page_with(
                &mut out,
                fragments,
                &collection.inventory,
                &collection.stats,
                Some(&server),
                &options,
                format,
            );
            out
        })
        .await?;
        self.renders.fetch_add(1, Ordering::Relaxed);
        lock(&self.sizes).entry(format).or_default().0 = text.len();
        Ok(Bytes::from(text))
    }

    async fn compress(&self, text: Bytes, format: Format) -> Result<Bytes, PageError> {
        let previous = self.size(format).1;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let compressed =
            crate::privileges::spawn_blocking(move || gzip(&text, threads.min(4), previous))
                .await??;
        self.compressions.fetch_add(1, Ordering::Relaxed);
        lock(&self.sizes).entry(format).or_default().1 = compressed.len();
        Ok(Bytes::from(compressed))
    }

    fn size(&self, format: Format) -> (usize, usize) {
        lock(&self.sizes).get(&format).copied().unwrap_or_default()
    }
}
