//! The `/metrics` page of one collection, per format, as text and as gzip:
//! made once by the first request that needs it, shared (as `Bytes`, never
//! copied) by every request of the same collection, and evicted when the
//! collection's last user drops it, so an idle exporter keeps no page (the
//! `Bytes` of responses still being sent live on until sent). The next
//! buffers are sized from the previous page. (The `/api/v1/inventory`
//! document is the collection's own: `Collection::inventory_json`.)
//! What is kept between collections: the label text of every program and
//! map ([`Fragments`], about 170 bytes per map, 250 per program), so the
//! next page formats only the values and the objects that are new or changed;
//! and the last text page of each format, up to [`SPARE_PAGE_MAX`], whose
//! buffer the next page is written into once no response still sends it
//! (a fresh multi-MB buffer is faulted in page by page: ~2 ms at 10 000 maps).
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use axum::body::Bytes;
use tokio::sync::OnceCell;

use super::{
    gzip::{gzip, GzipError},
    web_config::WebConfigHandle,
};
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
    Task(tokio::task::JoinError),
    #[error("compressing the page failed: {0}")]
    Gzip(GzipError),
}

/// Largest page whose buffer is kept for the next one (about 17 000 maps).
pub const SPARE_PAGE_MAX: usize = 8 << 20;

pub(super) struct PageCache {
    /// Its reload counts go on the page.
    web_config: Arc<WebConfigHandle>,
    latest: Mutex<HashMap<Format, Arc<CollectionPages>>>,
    /// The last text page per format: the next page's buffer once unshared.
    spare: Mutex<HashMap<Format, Bytes>>,
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
    pub fn new(web_config: Arc<WebConfigHandle>) -> Self {
        Self {
            web_config,
            latest: Mutex::default(),
            spare: Mutex::default(),
            fragments: Arc::default(),
            sizes: Mutex::default(),
            renders: AtomicU64::default(),
            compressions: AtomicU64::default(),
        }
    }

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
        let spare = lock(&self.spare).remove(&format);
        let web_config = self.web_config.reloads();
        let text = crate::privileges::spawn_blocking(move || {
            let mut out = reclaim(spare);
            // A fresh buffer gets the last page's size and a little room for
            // growth (none yet: the renderer's estimate). A kept one holds the
            // last page already: reserving more would move it (glibc may or
            // may not grow it in place) while the page has not grown.
            if out.capacity() == 0 {
                out.reserve(previous + previous / 32);
            }
            // Taken when the collection's page is made: its scrapes share it.
            let server = ServerStats {
                process: super::process::process_stats(),
                rejected: crate::http::rejections::counts(),
                web_config,
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
        .await
        .map_err(PageError::Task)?;
        self.renders.fetch_add(1, Ordering::Relaxed);
        lock(&self.sizes).entry(format).or_default().0 = text.len();
        let keep = text.capacity() <= SPARE_PAGE_MAX;
        let text = Bytes::from(text);
        if keep {
            lock(&self.spare).insert(format, text.clone());
        }
        Ok(text)
    }

    async fn compress(&self, text: Bytes, format: Format) -> Result<Bytes, PageError> {
        let previous = self.size(format).1;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let compressed =
            crate::privileges::spawn_blocking(move || gzip(&text, threads.min(4), previous))
                .await
                .map_err(PageError::Task)?
                .map_err(PageError::Gzip)?;
        self.compressions.fetch_add(1, Ordering::Relaxed);
        lock(&self.sizes).entry(format).or_default().1 = compressed.len();
        Ok(Bytes::from(compressed))
    }

    fn size(&self, format: Format) -> (usize, usize) {
        lock(&self.sizes).get(&format).copied().unwrap_or_default()
    }

    /// The kept last page of `format`.
    #[cfg(test)]
    pub fn spare(&self, format: Format) -> Option<Bytes> {
        lock(&self.spare).get(&format).cloned()
    }

    /// Whether the kept last page of `format` is held by nothing else: the
    /// condition for the next page to be written into its buffer.
    #[cfg(test)]
    pub fn spare_is_free(&self, format: Format) -> bool {
        lock(&self.spare).get(&format).is_some_and(Bytes::is_unique)
    }
}

/// The buffer of an earlier page, emptied, if no response holds it any more.
fn reclaim(spare: Option<Bytes>) -> String {
    let Some(Ok(buffer)) = spare.map(Bytes::try_into_mut) else {
        return String::new();
    };
    let mut buffer = Vec::from(buffer);
    buffer.clear();
    String::from_utf8(buffer).unwrap_or_default()
}
