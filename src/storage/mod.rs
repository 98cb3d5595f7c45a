//! Where a binary host lives: a folder on this machine (what `bin sync`
//! and `index` have always written), or S3-compatible object storage,
//! addressed as `s3://bucket/prefix`.
//!
//! The folder backend is plain files (written by `mirror::binsync` and
//! `mirror::index`, which sit above this module); this module holds the
//! object storage backend ([`Store`], on the `object_store` crate) and the parsing
//! that decides which one a destination names ([`Dest`]).
//!
//! Settings come from, in order: flags, the spec's `[binaries.storage]`,
//! then the standard AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ALLOW_HTTP`, …) and the shared credentials/config files of
//! `AWS_PROFILE` (`~/.aws/credentials`, `~/.aws/config`). Secrets are never
//! printed: every message a [`Store`] produces passes through
//! [`Store::redact`].
//!
//! Writes are conditional, so that two runs filling one bucket never
//! clobber each other: an object that was absent is written with
//! `If-None-Match: *` ([`PutMode::Create`]), one that was present with
//! `If-Match: <the ETag seen>` ([`PutMode::Update`]). Large objects are
//! multipart uploads, which S3 makes visible only at completion: the
//! caller completes one only after the bytes verified, and aborts it
//! otherwise, so a failed or mismatching transfer leaves no object; the
//! completion carries the same condition (`If-None-Match` / `If-Match` on
//! `CompleteMultipartUpload`), so the store, not a HEAD beforehand, decides
//! which of two racing runs wins.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, MultipartId, ObjectStore, PutMode,
    PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use reqwest::header::{IF_MATCH, IF_NONE_MATCH};

use crate::error::ErrorKind;
use crate::net::client::Http;
use crate::net::reply::xml_code;

mod parts;
use parts::PartPool;

/// A destination as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Local(std::path::PathBuf),
    S3(S3Url),
}

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Whether a destination argument names object storage.
pub fn is_s3(dest: &Path) -> bool {
    dest.to_str().is_some_and(|s| s.starts_with("s3://"))
}

impl Dest {
    /// A path is a folder unless it starts with `s3://`.
    pub fn parse(dest: &Path) -> Result<Dest, String> {
        let Some(rest) = dest.to_str().and_then(|s| s.strip_prefix("s3://")) else {
            return Ok(Dest::Local(dest.to_path_buf()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(format!(
                "'{bucket}' is not an S3 bucket name (3 to 63 lower-case letters, digits, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|s| s == "." || s == ".." || (s.is_empty() && !prefix.is_empty()))
            || prefix.contains(['\\', '?', '#', '{'])
            || prefix.chars().any(char::is_control)
        {
            return Err(format!(
                "'{prefix}' is not a plain key prefix (no empty, '.' or '..' segments)"
            ));
        }
        Ok(Dest::S3(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}

/// Settings that are not credentials: flags and `[binaries.storage]`.
/// `None` leaves the standard variable (or the default) in charge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `https://s3.example.com` (`AWS_ENDPOINT_URL`); AWS itself when unset.
    pub endpoint: Option<String>,
    /// `AWS_REGION`; `us-east-1` when unset everywhere.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`): the default with an
    /// endpoint; virtual-hosted (`bucket.endpoint/key`) when false.
    pub path_style: Option<bool>,
    /// Allow plain `http://` endpoints (`AWS_ALLOW_HTTP`).
    pub allow_http: Option<bool>,
    /// The public base URL clients read the bucket at, when it differs
    /// from the endpoint (a CDN): only used in messages and the public-read
    /// probe.
    pub public_url: Option<String>,
}

/// What went wrong talking to the store, with a kind scripts can match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// One of the `Storage*` kinds: `storage_unreachable`, `storage_denied`,
    /// `storage_bucket_missing`, `storage_no_credentials`,
    /// `storage_not_public`, `storage_conflict`, `storage_error`.
    pub kind: ErrorKind,
    pub message: String,
}

impl StoreError {
    /// The failure the user sees: the store's kind (which carries the exit
    /// code), message and hint.
    pub fn into_failure(self) -> crate::error::Failure {
        let hint = self.hint();
        crate::error::Failure::new(self.kind, self.message).hint(hint)
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    /// Whether the fault is in what the user gave (exit 2) rather than in
    /// being able to run (exit 3).
    pub fn is_bad_input(&self) -> bool {
        self.kind.exit() == crate::error::Exit::BadInput
    }

    pub fn hint(&self) -> &'static str {
        match self.kind {
            ErrorKind::StorageUnreachable => {
                "check the endpoint (--s3-endpoint, [binaries.storage] endpoint or AWS_ENDPOINT_URL) and that the store is up; plain http needs AWS_ALLOW_HTTP=true"
            }
            ErrorKind::StorageDenied => {
                "the store refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may read, list and write the bucket"
            }
            ErrorKind::StorageBucketMissing => {
                "create the bucket first (and give anonymous read of it to Zoi clients), or fix the bucket name"
            }
            ErrorKind::StorageNoCredentials => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile of ~/.aws/credentials"
            }
            ErrorKind::StorageNotPublic => {
                "Zoi fetches archives anonymously: grant anonymous read (s3:GetObject) on the bucket or prefix, or pass --private-bucket when a CDN with its own credentials fronts it"
            }
            _ => "run again; if it persists, check the store's logs",
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; the new ETag when the store gave one.
    Written(Option<String>),
    /// Another writer got there first (the object appeared, or changed,
    /// since it was looked at): nothing was written.
    Conflict,
}

/// What was there before a write, for the write's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there: replace it.
    Any,
    /// Nothing: create only.
    Absent,
    /// The object with this ETag: replace only that.
    ETag(String),
}

/// One object's listing entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the store's prefix, `/`-separated.
    pub rel: String,
    pub size: u64,
    pub e_tag: Option<String>,
    /// Seconds since the epoch.
    pub last_modified: i64,
}

pub use parts::PART;
/// The largest object written in one PUT (buffered whole: no more memory
/// than a multipart upload's parts, and one request instead of five).
pub const SINGLE_PUT_MAX: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The user metadata key on a `.hash` naming the ETag of the archive it was
/// written for (`x-amz-meta-archive-etag`): `index` uses it to know that an
/// archive has not been replaced since.
pub const ARCHIVE_ETAG_META: &str = "archive-etag";

/// An S3-compatible bucket (and prefix inside it).
pub struct Store {
    s3: Arc<AmazonS3>,
    /// The same, its requests carrying `If-None-Match: *`: completes a
    /// multipart upload only if the object is still absent.
    s3_create: Arc<AmazonS3>,
    /// To build clients with other preconditions ([`Store::client_with`]).
    builder: AmazonS3Builder,
    client_options: ClientOptions,
    pub url: S3Url,
    /// Where anonymous clients read the bucket: `<endpoint>/<bucket>` for
    /// path-style, else `https://<bucket>.<host>`.
    pub public_base: String,
    secrets: Vec<String>,
    /// The buffers of this store's multipart uploads.
    parts: Arc<PartPool>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `[section]` → `key = value` of an AWS shared config file.
fn ini_section(text: &str, wanted: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = wanted.iter().any(|w| w == name.trim());
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// Settings of `AWS_PROFILE` (or `default`) from the shared files.
fn profile_values() -> Vec<(String, String)> {
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = dirs::home_dir().unwrap_or_default();
    let creds = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config = env("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let mut out = Vec::new();
    if let Ok(t) = std::fs::read_to_string(creds) {
        out.extend(ini_section(&t, std::slice::from_ref(&profile)));
    }
    if let Ok(t) = std::fs::read_to_string(config) {
        let names = if profile == "default" {
            vec!["default".to_string(), "profile default".to_string()]
        } else {
            vec![format!("profile {profile}")]
        };
        out.extend(ini_section(&t, &names));
    }
    out
}

impl Store {
    /// Opens `url` with `settings`, the standard variables and the profile.
    /// Makes no request.
    pub fn open(url: &S3Url, settings: &S3Settings) -> Result<Store, StoreError> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
        let profile = profile_values();
        let from_profile = |k: &str| {
            profile
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let mut key_id = env("AWS_ACCESS_KEY_ID");
        let mut secret = env("AWS_SECRET_ACCESS_KEY");
        if key_id.is_none() || secret.is_none() {
            key_id = from_profile("aws_access_key_id");
            secret = from_profile("aws_secret_access_key");
            if let (Some(k), Some(s)) = (&key_id, &secret) {
                b = b.with_access_key_id(k).with_secret_access_key(s);
                if let Some(t) = from_profile("aws_session_token") {
                    b = b.with_token(t);
                }
            }
        }
        let other_provider = [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]
        .iter()
        .any(|v| env(v).is_some());
        if (key_id.is_none() || secret.is_none()) && !other_provider {
            // Without this, the AWS chain would ask the instance metadata
            // service, which on most machines hangs and then says nothing
            // useful.
            return Err(StoreError::new(
                ErrorKind::StorageNoCredentials,
                format!(
                    "no credentials for {url}: neither AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY nor the profile '{}' gives a key",
                    env("AWS_PROFILE").unwrap_or_else(|| "default".into())
                ),
            ));
        }
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT"))
            .or_else(|| from_profile("endpoint_url"));
        if let Some(e) = &endpoint {
            b = b.with_endpoint(e.trim_end_matches('/'));
        }
        let region = settings
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| from_profile("region"))
            .unwrap_or_else(|| "us-east-1".into());
        b = b.with_region(&region);
        let path_style = settings.path_style.unwrap_or_else(|| {
            // With an endpoint, path-style is what S3-compatible stores
            // speak; AWS itself is virtual-hosted.
            env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
                .map(|v| !matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
                .unwrap_or(endpoint.is_some())
        });
        b = b.with_virtual_hosted_style_request(!path_style);
        let allow_http = settings.allow_http.unwrap_or_else(|| {
            env("AWS_ALLOW_HTTP")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
        });
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
            && !allow_http
        {
            return Err(StoreError::new(
                ErrorKind::StorageUnreachable,
                format!(
                    "the endpoint {} is plain http, which is refused unless allowed",
                    endpoint.as_deref().unwrap_or_default()
                ),
            ));
        }
        // Over TLS, or over loopback, the payload needs no SHA-256 of its
        // own in the signature: nothing on the way can change the bytes,
        // and every archive's SHA-512 is checked against upstream's before
        // it is completed anyway. One hash pass less per byte, on both
        // ends (the store checks the SHA-256 it is sent). Over plain http
        // to another host the payload is signed. AWS_UNSIGNED_PAYLOAD
        // decides when set.
        if env("AWS_UNSIGNED_PAYLOAD").is_none() {
            b = b.with_unsigned_payload(transport_protected(endpoint.as_deref()));
        }
        let mut client_options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300))
            .with_default_content_type(content_type(""));
        for (suffix, _) in CONTENT_TYPES {
            client_options =
                client_options.with_content_type_for_suffix(*suffix, content_type(suffix));
        }
        b = b
            .with_disable_tagging(true)
            .with_config(AmazonS3ConfigKey::ConditionalPut, "etag")
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        let configure = |b: AmazonS3Builder, o: ClientOptions| {
            b.with_client_options(o).build().map_err(|e| {
                StoreError::new(
                    ErrorKind::StorageError,
                    format!("cannot configure {url}: {e}"),
                )
            })
        };
        let s3 = configure(b.clone(), client_options.clone())?;
        let mut if_absent = reqwest::header::HeaderMap::new();
        if_absent.insert(
            IF_NONE_MATCH,
            reqwest::header::HeaderValue::from_static("*"),
        );
        let s3_create = configure(
            b.clone(),
            client_options.clone().with_default_headers(if_absent),
        )?;
        let public_base = match (&settings.public_url, &endpoint) {
            (Some(p), _) => p.trim_end_matches('/').to_string(),
            (None, Some(e)) if path_style => {
                format!("{}/{}", e.trim_end_matches('/'), url.bucket)
            }
            (None, Some(e)) => {
                let (scheme, host) = e.split_once("://").unwrap_or(("https", e));
                format!("{scheme}://{}.{}", url.bucket, host.trim_end_matches('/'))
            }
            (None, None) => format!("https://{}.s3.{region}.amazonaws.com", url.bucket),
        };
        let mut secrets: Vec<String> = [secret, env("AWS_SESSION_TOKEN"), key_id]
            .into_iter()
            .flatten()
            .filter(|s| s.len() >= 4)
            .collect();
        if let Some(t) = from_profile("aws_session_token") {
            secrets.push(t);
        }
        Ok(Store {
            s3: Arc::new(s3),
            s3_create: Arc::new(s3_create),
            builder: b,
            client_options,
            url: url.clone(),
            public_base,
            secrets,
            parts: Arc::default(),
        })
    }

    /// `text` with every credential replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    fn key(&self, rel: &str) -> Result<Key, StoreError> {
        let rel = rel.trim_matches('/');
        let full = if self.url.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.url.prefix)
        };
        Key::parse(&full)
            .map_err(|e| StoreError::new(ErrorKind::StorageError, format!("bad key '{full}': {e}")))
    }

    fn rel_of(&self, key: &Key) -> String {
        let k = key.as_ref();
        if self.url.prefix.is_empty() {
            k.to_string()
        } else {
            k.strip_prefix(&format!("{}/", self.url.prefix))
                .unwrap_or(k)
                .to_string()
        }
    }

    /// The URL an anonymous client reads `rel` at.
    pub fn public_url(&self, rel: &str) -> String {
        let mut u = self.public_base.clone();
        for seg in self.url.prefix.split('/').chain(rel.split('/')) {
            if !seg.is_empty() {
                u.push('/');
                u.push_str(seg);
            }
        }
        u
    }

    /// `s3://bucket/prefix/rel`, for messages.
    pub fn display(&self, rel: &str) -> String {
        format!("{}/{}", self.url, rel.trim_matches('/'))
    }

    /// Turns an object_store error into a kind and a message without
    /// secrets.
    pub fn classify(&self, what: &str, e: &object_store::Error) -> StoreError {
        let text = self.redact(&format!("{e}"));
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            chain.push_str(&format!(" {s}"));
            src = s.source();
        }
        let chain = self.redact(&chain);
        let kind = if chain.contains("NoSuchBucket") {
            ErrorKind::StorageBucketMissing
        } else if chain.contains("InvalidAccessKeyId")
            || chain.contains("SignatureDoesNotMatch")
            || chain.contains("AccessDenied")
            || chain.contains("403 Forbidden")
            || chain.contains("status: 403")
        {
            ErrorKind::StorageDenied
        } else if matches!(
            e,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        ) {
            ErrorKind::StorageConflict
        } else if unreachable(e) {
            ErrorKind::StorageUnreachable
        } else {
            ErrorKind::StorageError
        };
        let short = match kind {
            ErrorKind::StorageBucketMissing => {
                format!("the bucket '{}' does not exist", self.url.bucket)
            }
            ErrorKind::StorageDenied => format!(
                "the store refused the request (AccessDenied / InvalidAccessKeyId / SignatureDoesNotMatch): {}",
                first_line(&text)
            ),
            ErrorKind::StorageUnreachable => {
                format!("cannot reach the store: {}", first_line(&chain))
            }
            _ => first_line(&text),
        };
        StoreError::new(kind, format!("{what}: {short}"))
    }

    /// Checks that the bucket exists and the credentials may list it, and
    /// — with `require_public` — that anonymous clients can read it (the
    /// public-read probe GETs a key that does not exist: 404 `NoSuchKey`
    /// from a public bucket, 403 `AccessDenied` from a private one).
    pub async fn preflight(&self, http: &Http, require_public: bool) -> Result<(), StoreError> {
        let prefix = if self.url.prefix.is_empty() {
            None
        } else {
            Some(Key::from(self.url.prefix.as_str()))
        };
        let mut listing = self.s3.list(prefix.as_ref());
        if let Some(Err(e)) = listing.next().await {
            return Err(self.classify(&format!("listing {}", self.url), &e));
        }
        drop(listing);
        if require_public {
            let probe = self.public_url(".zoi-mirror-public-read-probe");
            let u = url::Url::parse(&probe).map_err(|e| {
                StoreError::new(
                    ErrorKind::StorageError,
                    format!("bad public URL {probe}: {e}"),
                )
            })?;
            let resp = http
                .send(reqwest::Method::GET, &u, &[], Some(Duration::from_secs(30)))
                .await
                .map_err(|e| {
                    StoreError::new(
                        ErrorKind::StorageUnreachable,
                        format!("anonymous GET {probe}: {}", self.redact(&e.to_string())),
                    )
                })?;
            let status = resp.status().as_u16();
            if matches!(status, 401 | 403) {
                let body = resp.text().await.unwrap_or_default();
                let code = xml_code(&body).unwrap_or_else(|| format!("HTTP {status}"));
                return Err(StoreError::new(
                    ErrorKind::StorageNotPublic,
                    format!(
                        "{} is not readable anonymously: GET {probe} answers {status} {code}, and Zoi clients send no credentials",
                        self.url
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A small object's bytes and user metadata; `None` when absent.
    pub async fn get_small(&self, rel: &str) -> Result<Option<(Vec<u8>, Attributes)>, StoreError> {
        let key = self.key(rel)?;
        match self.s3.get(&key).await {
            Ok(r) => {
                let attrs = r.attributes.clone();
                let b = r
                    .bytes()
                    .await
                    .map_err(|e| self.classify(&self.display(rel), &e))?;
                Ok(Some((b.to_vec(), attrs)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.classify(&format!("GET {}", self.display(rel)), &e)),
        }
    }

    /// Size and ETag; `None` when absent.
    pub async fn head(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        let key = self.key(rel)?;
        match self.s3.head(&key).await {
            Ok(m) => Ok(Some(Entry {
                rel: rel.to_string(),
                size: m.size,
                e_tag: m.e_tag,
                last_modified: m.last_modified.timestamp(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.classify(&format!("HEAD {}", self.display(rel)), &e)),
        }
    }

    /// Every object under the prefix.
    pub async fn list(&self) -> Result<Vec<Entry>, StoreError> {
        let prefix = if self.url.prefix.is_empty() {
            None
        } else {
            Some(Key::from(self.url.prefix.as_str()))
        };
        let mut out = Vec::new();
        let mut s = self.s3.list(prefix.as_ref());
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| self.classify(&format!("listing {}", self.url), &e))?;
            out.push(Entry {
                rel: self.rel_of(&m.location),
                size: m.size,
                e_tag: m.e_tag,
                last_modified: m.last_modified.timestamp(),
            });
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// The object as a stream of chunks.
    pub async fn get_stream(
        &self,
        rel: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let key = self.key(rel)?;
        let r = self
            .s3
            .get(&key)
            .await
            .map_err(|e| self.classify(&format!("GET {}", self.display(rel)), &e))?;
        let secrets = self.secrets.clone();
        let name = self.display(rel);
        Ok(r.into_stream()
            .map(move |c| {
                c.map_err(|e| {
                    let mut m = format!("reading {name}: {e}");
                    for s in &secrets {
                        m = m.replace(s.as_str(), "***");
                    }
                    StoreError::new(ErrorKind::StorageUnreachable, m)
                })
            })
            .boxed())
    }

    /// Writes a small object in one PUT, on condition.
    pub async fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        expect: &Expect,
        meta: &[(&'static str, String)],
    ) -> Result<Put, StoreError> {
        let key = self.key(rel)?;
        let opts = PutOptions {
            mode: mode(expect),
            attributes: attributes(rel, meta),
            ..Default::default()
        };
        match self
            .s3
            .put_opts(&key, PutPayload::from(Bytes::from(bytes)), opts)
            .await
        {
            Ok(r) => Ok(Put::Written(r.e_tag)),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Put::Conflict),
            Err(e) => Err(self.classify(&format!("PUT {}", self.display(rel)), &e)),
        }
    }

    pub async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let key = self.key(rel)?;
        match self.s3.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.classify(&format!("DELETE {}", self.display(rel)), &e)),
        }
    }

    /// A streaming upload of `rel`, written on [`Upload::finish`] only.
    pub fn upload(self: &Arc<Self>, rel: &str) -> Upload {
        Upload {
            store: self.clone(),
            rel: rel.to_string(),
            buf: Vec::new(),
            multipart: None,
            len: 0,
        }
    }
}

/// Whether nothing between this machine and `endpoint` can alter a
/// request: TLS (AWS itself when there is no endpoint), or a loopback
/// address reached directly. A plain-http request goes through the proxy
/// of `HTTP_PROXY`/`ALL_PROXY` (reqwest's system proxy, which exempts only
/// what `NO_PROXY` names, loopback included), maybe on another machine: so
/// loopback counts only with no proxy set, or one `NO_PROXY` exempts the
/// host from (an exact name in the list, or `*`).
fn transport_protected(endpoint: Option<&str>) -> bool {
    transport_protected_with(endpoint, &|name| std::env::var(name).ok())
}

fn transport_protected_with(endpoint: Option<&str>, var: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(e) = endpoint else { return true };
    let Ok(u) = url::Url::parse(e) else {
        return false;
    };
    let loopback = match (u.scheme(), u.host()) {
        ("https", _) => return true,
        (_, Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        (_, Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        (_, Some(url::Host::Domain(d))) => d.eq_ignore_ascii_case("localhost"),
        (_, None) => false,
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
    };
    let proxied = set(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]).is_some();
    let host = u.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let exempt = set(&["NO_PROXY", "no_proxy"]).is_some_and(|list| {
        list.split(',')
            .map(|h| h.trim().trim_matches(['[', ']']))
            .any(|h| h == "*" || h.eq_ignore_ascii_case(host))
    });
    loopback && (!proxied || exempt)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// Whether the store could not be reached at all (refused, no such host,
/// TLS, timed out, dropped): object_store's error then wraps the transport
/// error of its HTTP client, a `reqwest::Error` that is not about decoding
/// an answer. Known by its type, whatever its text.
fn unreachable(e: &object_store::Error) -> bool {
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = link {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            return !r.is_decode() && r.status().is_none();
        }
        link = err.source();
    }
    false
}

fn mode(expect: &Expect) -> PutMode {
    match expect {
        Expect::Any => PutMode::Overwrite,
        Expect::Absent => PutMode::Create,
        Expect::ETag(e) => PutMode::Update(UpdateVersion {
            e_tag: Some(e.clone()),
            version: None,
        }),
    }
}

/// Content types by file suffix (what nginx would serve); anything else is
/// `application/octet-stream`.
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("hash", "text/plain; charset=utf-8"),
    ("size", "text/plain; charset=utf-8"),
    ("files", "text/plain; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("json", "application/json"),
    ("yaml", "text/yaml"),
    ("asc", "application/pgp-keys"),
    ("sig", "application/pgp-signature"),
    ("zpa", "application/zstd"),
    ("zst", "application/zstd"),
    ("zsa", "application/zstd"),
    ("zdelta", "application/zstd"),
    ("lua", "text/x-lua"),
    ("sh", "text/x-shellscript"),
    ("ps1", "text/plain; charset=utf-8"),
];

fn content_type(suffix: &str) -> &'static str {
    CONTENT_TYPES
        .iter()
        .find(|(s, _)| *s == suffix)
        .map_or("application/octet-stream", |(_, ct)| ct)
}

/// Content type for a file name, plus user metadata.
fn attributes(rel: &str, meta: &[(&'static str, String)]) -> Attributes {
    let ct = content_type(rel.rsplit('.').next().unwrap_or_default());
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, AttributeValue::from(ct));
    for (k, v) in meta {
        a.insert(
            Attribute::Metadata(Cow::Borrowed(k)),
            AttributeValue::from(v.clone()),
        );
    }
    a
}

/// A streaming upload: bytes are buffered up to [`SINGLE_PUT_MAX`]; a larger
/// object becomes a multipart upload (parts of [`PART`] go out as they
/// fill, at most [`PARTS_IN_FLIGHT`] at once, so memory stays bounded
/// whatever the object's size). Nothing is visible until
/// [`Upload::finish`]; dropping or [`Upload::abort`]ing it leaves no object.
///
/// The parts go through object_store's [`MultipartStore`] rather than its
/// `WriteMultipart`, because the completion must carry the write's
/// condition and only the upload ID makes that possible: it is sent by a
/// client whose requests carry `If-None-Match: *` (or `If-Match: <ETag>`),
/// so the store itself refuses to complete over another run's object.
pub struct Upload {
    store: Arc<Store>,
    rel: String,
    /// The whole object while it is small; then the part being filled.
    buf: Vec<u8>,
    multipart: Option<Multipart>,
    len: u64,
}

struct Multipart {
    key: Key,
    id: MultipartId,
    in_flight: tokio::task::JoinSet<(usize, object_store::Result<PartId>)>,
    /// By part index; `None` while in flight.
    parts: Vec<Option<PartId>>,
}

impl Upload {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Restarts from zero (the source sent the whole object again).
    pub async fn reset(&mut self) -> Result<(), StoreError> {
        if let Some(m) = self.multipart.take() {
            self.store.abort_multipart(m).await;
        }
        self.buf.clear();
        self.len = 0;
        Ok(())
    }

    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.len += chunk.len() as u64;
        if self.multipart.is_some() {
            return self.fill_parts(&chunk).await;
        }
        self.buf.extend_from_slice(&chunk);
        if self.multipart.is_none() {
            if self.buf.len() <= SINGLE_PUT_MAX {
                return Ok(());
            }
            let key = self.store.key(&self.rel)?;
            // The content type comes from the client's suffix table (the
            // trait's create takes no attributes).
            let id = self.store.s3.create_multipart(&key).await.map_err(|e| {
                self.store.classify(
                    &format!("starting the upload of {}", self.store.display(&self.rel)),
                    &e,
                )
            })?;
            self.multipart = Some(Multipart {
                key,
                id,
                in_flight: tokio::task::JoinSet::new(),
                parts: Vec::new(),
            });
        }
        let small = std::mem::take(&mut self.buf);
        self.fill_parts(&small).await
    }

    /// Appends to the part being filled, sending each as it reaches
    /// [`PART`]. Every part is a buffer of exactly [`PART`] bytes from the
    /// store's [`PartPool`]: no doubling as it grows, and no allocation per
    /// part (see the pool for the memory the allocator would keep).
    async fn fill_parts(&mut self, mut bytes: &[u8]) -> Result<(), StoreError> {
        while !bytes.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = self.store.parts.take();
            }
            let n = (PART - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == PART {
                let part = std::mem::take(&mut self.buf);
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Sends one part, first waiting for room among those in flight.
    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), StoreError> {
        let m = self.multipart.as_mut().expect("a multipart upload");
        while m.in_flight.len() >= PARTS_IN_FLIGHT {
            Self::settle_one(&self.store, &self.rel, m).await?;
        }
        let idx = m.parts.len();
        m.parts.push(None);
        let (s3, key, id) = (self.store.s3.clone(), m.key.clone(), m.id.clone());
        let body = PartPool::freeze(&self.store.parts, part);
        m.in_flight.spawn(async move {
            let r = s3.put_part(&key, &id, idx, PutPayload::from(body)).await;
            (idx, r)
        });
        Ok(())
    }

    async fn settle_one(store: &Store, rel: &str, m: &mut Multipart) -> Result<(), StoreError> {
        match m.in_flight.join_next().await {
            None => Ok(()),
            Some(Ok((idx, Ok(p)))) => {
                m.parts[idx] = Some(p);
                Ok(())
            }
            Some(Ok((_, Err(e)))) => Err(store.classify(&store.display(rel), &e)),
            Some(Err(e)) => Err(StoreError::new(
                ErrorKind::StorageError,
                format!("uploading {}: {e}", store.display(rel)),
            )),
        }
    }

    /// Makes the object visible, on condition: a small object in one
    /// conditional PUT, a multipart upload by a conditional completion.
    pub async fn finish(mut self, expect: &Expect) -> Result<Put, StoreError> {
        hold_for_test(&self.rel).await;
        if self.multipart.is_none() {
            let bytes = std::mem::take(&mut self.buf);
            return self.store.put(&self.rel, bytes, expect, &[]).await;
        }
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.send_part(last).await?;
        }
        let mut m = self.multipart.take().expect("a multipart upload");
        while !m.in_flight.is_empty() {
            if let Err(e) = Self::settle_one(&self.store, &self.rel, &mut m).await {
                self.store.abort_multipart(m).await;
                return Err(e);
            }
        }
        let parts: Vec<PartId> = m.parts.iter().flatten().cloned().collect();
        let client = match self.store.conditional_client(expect) {
            Ok(c) => c,
            Err(e) => {
                self.store.abort_multipart(m).await;
                return Err(e);
            }
        };
        match client.complete_multipart(&m.key, &m.id, parts).await {
            Ok(r) => Ok(Put::Written(r.e_tag)),
            // 412 from `If-None-Match: *` / `If-Match`, 409 from a
            // concurrent conditional write, 404 from `If-Match` on an
            // object deleted meanwhile: another writer got there first.
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotModified { .. },
            ) => {
                self.store.abort_multipart(m).await;
                Ok(Put::Conflict)
            }
            Err(object_store::Error::NotFound { .. }) if matches!(expect, Expect::ETag(_)) => {
                self.store.abort_multipart(m).await;
                Ok(Put::Conflict)
            }
            Err(e) => {
                let err = self.store.classify(
                    &format!("completing the upload of {}", self.store.display(&self.rel)),
                    &e,
                );
                self.store.abort_multipart(m).await;
                Err(err)
            }
        }
    }

    /// Drops what was sent: no object appears.
    pub async fn abort(mut self) {
        if let Some(m) = self.multipart.take() {
            self.store.abort_multipart(m).await;
        }
    }
}

/// A test hook, so that a test can race another writer against this
/// run's write deterministically (tests/it/s3.rs): with
/// `ZOI_MIRROR_TEST_HOLD_FINISH=DIR`, an upload that is about to be made
/// visible writes `DIR/<key, / as _>.ready` and waits (up to a minute) for
/// `DIR/go`. Unset (always, outside tests), it costs one variable lookup.
async fn hold_for_test(rel: &str) {
    let Some(dir) = std::env::var_os("ZOI_MIRROR_TEST_HOLD_FINISH") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::write(dir.join(format!("{}.ready", rel.replace('/', "_"))), b"");
    for _ in 0..600 {
        if dir.join("go").exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Store {
    /// Stops the parts in flight and drops the upload's stored parts.
    async fn abort_multipart(&self, mut m: Multipart) {
        m.in_flight.abort_all();
        while m.in_flight.join_next().await.is_some() {}
        let _ = self.s3.abort_multipart(&m.key, &m.id).await;
    }

    /// The client whose requests carry `expect` as a precondition header.
    fn conditional_client(&self, expect: &Expect) -> Result<Arc<AmazonS3>, StoreError> {
        match expect {
            Expect::Any => Ok(self.s3.clone()),
            Expect::Absent => Ok(self.s3_create.clone()),
            // Rare (an archive upstream replaced): a client of its own.
            Expect::ETag(t) => self.client_with(IF_MATCH, t).map(Arc::new),
        }
    }

    fn client_with(
        &self,
        name: reqwest::header::HeaderName,
        value: &str,
    ) -> Result<AmazonS3, StoreError> {
        let mut headers = reqwest::header::HeaderMap::new();
        let v = reqwest::header::HeaderValue::from_str(value).map_err(|e| {
            StoreError::new(ErrorKind::StorageError, format!("bad ETag {value:?}: {e}"))
        })?;
        headers.insert(name, v);
        self.builder
            .clone()
            .with_client_options(self.client_options.clone().with_default_headers(headers))
            .build()
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::StorageError,
                    format!("cannot configure {}: {e}", self.url),
                )
            })
    }
}

/// A blocking reader over chunks sent from the async side.
pub struct ChannelReader {
    pub rx: tokio::sync::mpsc::Receiver<Bytes>,
    pub cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            Dest::parse(Path::new("s3://zoi/pkgs/v1/")).unwrap(),
            Dest::S3(S3Url {
                bucket: "zoi".into(),
                prefix: "pkgs/v1".into()
            })
        );
        assert_eq!(
            Dest::parse(Path::new("s3://zoi")).unwrap(),
            Dest::S3(S3Url {
                bucket: "zoi".into(),
                prefix: String::new()
            })
        );
        assert!(matches!(
            Dest::parse(Path::new("/srv/pkgs")).unwrap(),
            Dest::Local(_)
        ));
        assert!(Dest::parse(Path::new("s3://Bad_Bucket/x")).is_err());
        assert!(Dest::parse(Path::new("s3://zoi/a/../b")).is_err());
        assert!(Dest::parse(Path::new("s3://zoi/a//b")).is_err());
    }

    #[test]
    fn the_payload_is_signed_unless_tls_or_loopback_protects_it() {
        for (endpoint, protected) in [
            (None, true),
            (Some("https://s3.example.com"), true),
            (Some("http://127.0.0.1:8333"), true),
            (Some("http://127.3.4.5:8333"), true),
            (Some("http://[::1]:8333"), true),
            (Some("http://LocalHost:8333/"), true),
            (Some("http://10.0.0.5:8333"), false),
            (Some("http://s3.corp.example"), false),
            (Some("http://localhost.corp.example"), false),
            (Some("not a url"), false),
        ] {
            assert_eq!(
                transport_protected_with(endpoint, &|_| None),
                protected,
                "{endpoint:?}"
            );
        }
        // Through a proxy, loopback is only protected if NO_PROXY exempts it.
        let env = |proxy: &'static str, no_proxy: &'static str| {
            move |n: &str| match n {
                "HTTP_PROXY" => Some(proxy.to_string()),
                "NO_PROXY" => Some(no_proxy.to_string()),
                _ => None,
            }
        };
        let local = Some("http://127.0.0.1:8333");
        assert!(!transport_protected_with(
            local,
            &env("http://proxy:3128", "")
        ));
        assert!(!transport_protected_with(
            local,
            &env("http://proxy:3128", "localhost")
        ));
        assert!(transport_protected_with(
            local,
            &env("http://proxy:3128", "localhost, 127.0.0.1")
        ));
        assert!(transport_protected_with(
            local,
            &env("http://proxy:3128", "*")
        ));
        assert!(transport_protected_with(local, &env("", "")));
        let v6 = Some("http://[::1]:8333");
        assert!(transport_protected_with(
            v6,
            &env("http://proxy:3128", "::1")
        ));
        let tls = Some("https://s3.example.com");
        assert!(transport_protected_with(tls, &env("http://proxy:3128", "")));
    }

    #[test]
    fn profiles_are_read_by_section() {
        let t = "[default]\naws_access_key_id = A\n[other]\naws_access_key_id = B\n";
        assert_eq!(
            ini_section(t, &["other".to_string()]),
            [("aws_access_key_id".to_string(), "B".to_string())]
        );
    }
}
