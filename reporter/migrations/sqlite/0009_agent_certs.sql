-- Optional mutual TLS: the SHA-256 of the public key (SPKI) of the certificate
-- an agent enrolled with. Its token is then accepted only with that key.
ALTER TABLE agents ADD COLUMN cert_spki_sha256 TEXT
