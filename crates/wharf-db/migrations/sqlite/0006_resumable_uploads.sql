-- Upload sessions carry what any node needs to continue them: the running hash of the bytes
-- so far and the blob store's own state (an S3 multipart upload's parts).
ALTER TABLE uploads ADD COLUMN hash_state BLOB;
ALTER TABLE uploads ADD COLUMN store_state TEXT;
