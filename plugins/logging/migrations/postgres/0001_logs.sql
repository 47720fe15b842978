-- One row per request. Same columns and types as the SQLite migration: integers are
-- 64-bit everywhere (booleans as 0/1), times are Unix milliseconds, durations microseconds.
CREATE TABLE IF NOT EXISTS bifrost_logs (
    seq               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL,
    started_at        BIGINT  NOT NULL,
    ended_at          BIGINT  NOT NULL,
    transport         TEXT    NOT NULL,
    object_type       TEXT    NOT NULL,
    stream            BIGINT  NOT NULL,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    fallback_chain    TEXT    NOT NULL,
    fallback_index    BIGINT,
    retries           BIGINT  NOT NULL,
    status            TEXT    NOT NULL,
    status_code       BIGINT,
    latency_us        BIGINT  NOT NULL,
    ttft_us           BIGINT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    input             TEXT,
    output            TEXT,
    error             TEXT,
    error_type        TEXT,
    key_id            TEXT,
    virtual_key       TEXT,
    user_id           TEXT
);
CREATE INDEX IF NOT EXISTS bifrost_logs_started_at ON bifrost_logs (started_at);
CREATE INDEX IF NOT EXISTS bifrost_logs_id ON bifrost_logs (id);
CREATE INDEX IF NOT EXISTS bifrost_logs_provider_model ON bifrost_logs (provider, model);
CREATE INDEX IF NOT EXISTS bifrost_logs_status ON bifrost_logs (status);
CREATE INDEX IF NOT EXISTS bifrost_logs_virtual_key ON bifrost_logs (virtual_key);
