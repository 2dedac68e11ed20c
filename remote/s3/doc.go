// Package s3 opens objects of Amazon S3 and of S3-compatible servers
// (MinIO, Ceph, Versity, ...) as s3://BUCKET/KEY, so that ovfmount can
// mount an OVA kept in a bucket without downloading it.
//
// # One read path
//
// The object's bytes are read by package remote, as any HTTP(S) file:
// [Open] works out the object's URL and hands remote a request signer and
// an error reader, nothing more. So everything remote promises holds for
// S3 unchanged, decided in one place: aligned blocks in a bounded memory
// LRU and optional disk cache, parallel range GETs and read-ahead,
// retries with backoff of dropped connections, stalls (RequestTimeout),
// 5xx (S3's 503 SlowDown among them), 408 and 429 until
// [remote.ErrUnavailable], and pinning of the version opened: S3's ETag
// is a strong tag, so every GET carries If-Match, an object replaced
// under a mount answers 412 or another ETag, and the File fails every
// read from then on with [remote.ErrChanged], never mixing the bytes of
// two versions.
//
// # Credentials, region and endpoint, as the AWS CLI takes them
//
// The AWS SDK for Go v2 loads the configuration: credentials from the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), the shared credentials and config files with their
// profiles (AWS_PROFILE or Options.Profile; SSO and assumed roles too),
// web identity, and container or instance metadata. Every GET is signed
// with SigV4 afresh on every attempt, so retries never send a stale
// signature and refreshed credentials are used once the old ones expire.
// The SDK's own client, with its own retries, sends only the few
// requests that are not reads of the object: one HeadBucket when no
// region is configured (S3 names the bucket's region in its answer) and
// the ListObjectsV2 pages of [List]. The GETs never go through it, so
// they are never retried twice over.
//
// The endpoint is Options.Endpoint, else AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL (or the profile's endpoint_url), else AWS's regional
// endpoint. A custom endpoint is addressed path-style by default,
// AWS virtual-hosted; see [Addressing].
//
// # Errors
//
// What S3 says about a failed request (the Code and Message of its XML
// error body, of which the first 4 KiB are read) is an [*Error] in the
// error chain. No credentials at all, or credentials S3 refuses (a wrong
// secret: SignatureDoesNotMatch; an unknown key: InvalidAccessKeyId), are
// [ErrCredentials]; a missing bucket or key is [ErrNotFound] (and
// [remote.ErrNotFound]). Objects are named s3://BUCKET/KEY in errors and
// logs. Credentials and signatures are never logged nor put in an error:
// only S3's Code, Message, Region and request id are taken from its
// error body, not what it echoes of the request.
//
// # What it refuses
//
// Anonymous access: without credentials Open fails; a public object can
// be read by its https URL with package remote instead. An Authorization
// header of the caller's (requests are signed). A listing of more than
// [MaxListKeys] keys. FIPS, dual-stack and S3 Express endpoints are not
// chosen by themselves: give them as Options.Endpoint.
package s3
