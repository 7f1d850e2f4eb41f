-- Who sent each event, as the gateway saw it: the client's IP (X-Forwarded-For believed
-- only from trusted proxies) and its User-Agent (cut to 512 characters). Rows written
-- before this migration read as ''. A String rather than IPv6, so an unknown address
-- stays '' and readers need no conversion.
ALTER TABLE {db}.events
    ADD COLUMN IF NOT EXISTS client_ip String DEFAULT '' AFTER environment,
    ADD COLUMN IF NOT EXISTS user_agent String DEFAULT '' AFTER client_ip
