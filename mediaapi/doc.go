// Package mediaapi is Myelin's media repository (client-server-api
// "Content repository", server-server-api "Content Repository"):
//
//   - uploads: POST /_matrix/media/v3/upload, and the asynchronous POST
//     /_matrix/media/v1/create followed by PUT
//     /_matrix/media/v3/upload/{serverName}/{mediaId}, streamed to a
//     temporary file while their SHA-256 is computed, then renamed to a
//     file named by that hash (identical uploads share one file), with a
//     size limit per file, a quota per user and a bound on pending IDs;
//   - downloads, thumbnails, /config and /preview_url on the authenticated
//     /_matrix/client/v1/media/ endpoints and on the legacy unauthenticated
//     /_matrix/media/{v3,r0}/ ones (which media.freeze_unauthenticated
//     freezes for new media), with range requests, and served so that no
//     upload can run script in a client's origin (Content-Disposition
//     inline only for the spec's safe types, a sandboxing
//     Content-Security-Policy and nosniff on every response);
//   - thumbnails of PNG, JPEG, GIF (animated on request) and WebP images at
//     the configured sizes, made once and kept; dimensions are checked
//     before an image is decoded, so decompression bombs are refused;
//   - remote media fetched from its origin over federation (the
//     authenticated multipart endpoints, then the legacy ones for older
//     servers), one fetch per item however many ask at once, cached, and
//     our media served to other servers on the same endpoints;
//   - URL previews: the page is fetched (bounded in size and time, every
//     address connected to checked against an IP denylist, redirects
//     included), its OpenGraph data and title read and its image stored;
//     answers are cached;
//   - administration with the shape of Synapse's admin API: quarantine and
//     delete media by ID, by user and by room, and purge cached remote
//     media (also done by a background job after
//     media.remote_media_lifetime).
//
// File contents live in a BlobStore (the local filesystem under data_dir
// by default), metadata in the database (storage/media.go).
package mediaapi
