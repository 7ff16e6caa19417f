//! Where dataset files are kept: one interface, two implementations.
//!
//! - [`LocalStorage`] (the default) keeps them under `DATA_DIR/datasets/<owner>/<dataset>/`.
//! - [`ObjectStorage`] keeps them in an object store (`STORAGE_URL`: `s3://bucket/prefix` for
//!   S3 or any S3-compatible server, `file:///path` for a shared directory) under
//!   `<prefix>/<owner>/<dataset>/`, and a local cache of what DuckDB reads under the same
//!   local path, fetched again when missing (a new instance, a wiped disk).
//!
//! Each version of a dataset is its own dataset id (with a parent link), so the layout is
//! per user / dataset version. DuckDB reads local files only, so both implementations hand
//! out a local directory ([`Storage::local`]); publishing is all-or-nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use crate::config::ObjectStoreConfig;
use crate::domain::{DatasetId, UserId};

/// Which dataset version's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesKey {
    pub owner: UserId,
    pub dataset: DatasetId,
}

/// Files that are fetched back into the local cache; the original upload is kept durably
/// but nothing reads it again, so it is not fetched.
const NOT_CACHED: &[&str] = &["original"];

/// Durable storage of dataset files.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Makes the files of `staged` (a complete directory under the local root) the durable
    /// files of `key`; `staged` is consumed. On error nothing durable is left for `key`.
    async fn publish(&self, key: FilesKey, staged: &Path) -> anyhow::Result<()>;

    /// A local directory holding the files of `key` for the engine to read (fetched from
    /// the durable copy when it is not cached). Files written into it later (exports) are
    /// local only.
    async fn local(&self, key: FilesKey) -> anyhow::Result<PathBuf>;

    /// Removes the files of `key`, durable and cached. Missing files are not an error.
    async fn remove(&self, key: FilesKey) -> anyhow::Result<()>;

    /// Where the files go, for logs.
    fn describe(&self) -> String;
}

/// Opens the storage the configuration names; `root` is `DATA_DIR/datasets`.
pub fn open(config: Option<&ObjectStoreConfig>, root: PathBuf) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(match config {
        None => Arc::new(LocalStorage::new(root)),
        Some(config) => Arc::new(ObjectStorage::open(config, LocalStorage::new(root))?),
    })
}

/// Creates `dir` (and its parents) and checks that this process can create, write and remove
/// a file in it; the error names the folder.
pub fn ensure_writable(dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating the folder {}", dir.display()))?;
    let probe = dir.join(format!(".write-check-{}", uuid::Uuid::new_v4().simple()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"ok").and_then(|()| file.sync_all()));
    let removed = std::fs::remove_file(&probe);
    written.with_context(|| format!("the folder {} is not writable by this process", dir.display()))?;
    removed.with_context(|| format!("removing a file from the folder {}", dir.display()))?;
    Ok(())
}

/// Files on the local file system: the default.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    fn dir(&self, key: FilesKey) -> PathBuf {
        self.root.join(key.owner.to_string()).join(key.dataset.to_string())
    }

    /// Moves a complete directory into place (same file system: one rename).
    async fn place(&self, key: FilesKey, staged: &Path) -> anyhow::Result<PathBuf> {
        let dir = self.dir(key);
        tokio::fs::create_dir_all(dir.parent().context("dataset directory has a parent")?).await?;
        tokio::fs::rename(staged, &dir).await.context("moving the dataset into place")?;
        Ok(dir)
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn publish(&self, key: FilesKey, staged: &Path) -> anyhow::Result<()> {
        self.place(key, staged).await.map(|_| ())
    }

    async fn local(&self, key: FilesKey) -> anyhow::Result<PathBuf> {
        Ok(self.dir(key))
    }

    async fn remove(&self, key: FilesKey) -> anyhow::Result<()> {
        remove_dir(&self.dir(key)).await
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }
}

/// Files in an object store, with a local cache for the engine.
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    cache: LocalStorage,
    description: String,
}

/// Bytes buffered before an upload switches to a multipart upload.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// How long one request to the object store may take (a part of [`PART_SIZE`] at 300 KB/s).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long connecting to the object store may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// After how long a failing request is not tried again.
const RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

impl ObjectStorage {
    pub fn open(config: &ObjectStoreConfig, cache: LocalStorage) -> anyhow::Result<Self> {
        let url = url::Url::parse(&config.url).context("STORAGE_URL is not a URL")?;
        let mut options: Vec<(&str, String)> = Vec::new();
        if let Some(endpoint) = &config.endpoint {
            options.push(("aws_endpoint", endpoint.clone()));
        }
        if let Some(region) = &config.region {
            options.push(("aws_region", region.clone()));
        }
        if let Some(id) = &config.access_key_id {
            options.push(("aws_access_key_id", id.expose().clone()));
        }
        if let Some(secret) = &config.secret_access_key {
            options.push(("aws_secret_access_key", secret.expose().clone()));
        }
        if config.allow_http {
            options.push(("aws_allow_http", "true".into()));
        }
        if config.path_style {
            options.push(("aws_virtual_hosted_style_request", "false".into()));
        }
        let (scheme, path) = object_store::ObjectStoreScheme::parse(&url).context("reading STORAGE_URL")?;
        let prefix = ObjectPath::parse(path).context("reading STORAGE_URL's path")?;
        let store: Box<dyn ObjectStore> = match scheme {
            // A store that stops answering fails a request in about a minute (two attempts of
            // REQUEST_TIMEOUT), not object_store's default three minutes of retries.
            object_store::ObjectStoreScheme::AmazonS3 => {
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: RETRY_TIMEOUT,
                    ..object_store::RetryConfig::default()
                };
                let client = object_store::ClientOptions::new()
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT);
                // (The client options first: `aws_allow_http` is one of them.)
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_url(url.as_str())
                    .with_client_options(client)
                    .with_retry(retry);
                for (key, value) in options {
                    builder = builder.with_config(key.parse().context("an object store option")?, value);
                }
                Box::new(builder.build().context("opening STORAGE_URL")?)
            }
            _ => object_store::parse_url_opts(&url, options).context("opening STORAGE_URL")?.0,
        };
        // The URL without credentials or query, for logs.
        let description =
            format!("object store {}://{}{}", url.scheme(), url.host_str().unwrap_or(""), url.path());
        Ok(ObjectStorage { store: Arc::from(store), prefix, cache, description })
    }

    fn prefix(&self, key: FilesKey) -> ObjectPath {
        self.prefix.child(key.owner.to_string()).child(key.dataset.to_string())
    }

    async fn upload(&self, key: FilesKey, staged: &Path) -> anyhow::Result<()> {
        let mut entries = tokio::fs::read_dir(staged).await?;
        while let Some(entry) = entries.next_entry().await? {
            if !entry.file_type().await?.is_file() {
                continue;
            }
            let name =
                entry.file_name().into_string().map_err(|_| anyhow::anyhow!("file name is not UTF-8"))?;
            let mut file = tokio::fs::File::open(entry.path()).await?;
            let target = self.prefix(key).child(name.as_str());
            let mut writer =
                object_store::buffered::BufWriter::with_capacity(self.store.clone(), target, PART_SIZE);
            let copied = tokio::io::copy(&mut file, &mut writer).await;
            match copied {
                Ok(_) => writer.shutdown().await.with_context(|| format!("uploading {name}"))?,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(anyhow::Error::from(e).context(format!("uploading {name}")));
                }
            }
        }
        Ok(())
    }

    async fn delete_objects(&self, key: FilesKey) -> anyhow::Result<()> {
        let prefix = self.prefix(key);
        let locations = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        self.store.delete_stream(locations).try_collect::<Vec<_>>().await?;
        Ok(())
    }

    /// Downloads the cached files of `key` into a fresh directory under the cache root,
    /// then renames it into place. Concurrent fetches of one key each download; the first
    /// rename wins and the others discard their copy.
    async fn fetch(&self, key: FilesKey, dir: &Path) -> anyhow::Result<()> {
        let scratch = self.cache.root.join(".fetch").join(uuid::Uuid::new_v4().simple().to_string());
        tokio::fs::create_dir_all(&scratch).await?;
        let result = async {
            let prefix = self.prefix(key);
            let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
            if objects.is_empty() {
                anyhow::bail!("no files in {} for dataset {}", self.description, key.dataset);
            }
            for meta in objects {
                let Some(name) = meta.location.filename() else { continue };
                if NOT_CACHED.contains(&name) {
                    continue;
                }
                let mut out = tokio::fs::File::create(scratch.join(name)).await?;
                let mut stream = self.store.get(&meta.location).await?.into_stream();
                while let Some(chunk) = stream.next().await {
                    out.write_all(&chunk?).await?;
                }
                out.sync_all().await?;
            }
            tokio::fs::create_dir_all(dir.parent().context("dataset directory has a parent")?).await?;
            if tokio::fs::rename(&scratch, dir).await.is_err() && !tokio::fs::try_exists(dir).await? {
                anyhow::bail!("could not move fetched files into {}", dir.display());
            }
            Ok(())
        }
        .await;
        let _ = remove_dir(&scratch).await;
        result.with_context(|| format!("fetching dataset {} from {}", key.dataset, self.description))
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    async fn publish(&self, key: FilesKey, staged: &Path) -> anyhow::Result<()> {
        if let Err(e) = self.upload(key, staged).await {
            if let Err(cleanup) = self.delete_objects(key).await {
                tracing::warn!(dataset_id = %key.dataset, error = %cleanup, "could not remove a partial upload");
            }
            return Err(e.context(format!("publishing to {}", self.description)));
        }
        // The durable copy is complete; the staged directory becomes the cache.
        if let Err(e) = self.cache.place(key, staged).await {
            tracing::warn!(dataset_id = %key.dataset, error = %e, "could not keep a cached copy");
        }
        Ok(())
    }

    async fn local(&self, key: FilesKey) -> anyhow::Result<PathBuf> {
        let dir = self.cache.dir(key);
        if !tokio::fs::try_exists(&dir).await? {
            self.fetch(key, &dir).await?;
        }
        Ok(dir)
    }

    async fn remove(&self, key: FilesKey) -> anyhow::Result<()> {
        self.delete_objects(key).await?;
        self.cache.remove(key).await
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

async fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::from(e).context(format!("removing {}", dir.display())))
        }
        _ => Ok(()),
    }
}
