-- The checkpoint store of deskie-import: the hand-off between extraction (Desk360) and loading
-- (Deskie), and the checkpoint of both. Every timestamp is text, a civil ISO datetime
-- `YYYY-MM-DDTHH:MM:SS` (UTC for times this program records, the source's naive time for Desk360
-- data); every JSON document is text. Ticket keys are always (product_id, ticket_id) because
-- Desk360 scopes ticket ids by product.

-- One row per invocation of the program, so the report can say what ran, when, with which
-- configuration, and whether it finished (a NULL finished_at after the process is gone means it was
-- killed).
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    -- what was asked: a full run, a dry run, a retry of failed items or a verification
    kind               TEXT    NOT NULL CHECK (kind IN ('run', 'dry-run', 'retry-failed', 'verify')),
    started_at         TEXT    NOT NULL,
    finished_at        TEXT,
    -- free text written by the engine at the end ("ok", "failures", "interrupted", ...)
    outcome            TEXT,
    -- hash of the effective configuration (no secrets), to tell runs with a changed mapping apart
    config_fingerprint TEXT    NOT NULL
);

-- Reference data read from Desk360 once per run, for mapping and for reports by name.
-- `raw` keeps the object exactly as Desk360 sent it.
CREATE TABLE products (
    id   INTEGER PRIMARY KEY, -- Desk360 product id
    name TEXT    NOT NULL,
    raw  TEXT    NOT NULL
);

CREATE TABLE agents (
    id    INTEGER PRIMARY KEY, -- Desk360 agent id (the `agent_id` of messages and tickets)
    name  TEXT    NOT NULL,
    email TEXT,
    raw   TEXT    NOT NULL
);

CREATE TABLE types (
    id         INTEGER PRIMARY KEY, -- Desk360 ticket type id
    product_id INTEGER,             -- product it is scoped to; NULL: every product
    title      TEXT    NOT NULL,
    raw        TEXT    NOT NULL
);

CREATE TABLE reasons (
    id         INTEGER PRIMARY KEY, -- Desk360 ticket reason id
    product_id INTEGER,             -- product it is scoped to; NULL: every product
    title      TEXT    NOT NULL,
    raw        TEXT    NOT NULL
);

-- Where the ticket listing of each product stands, so a restart continues from the next page.
-- The extractor follows the server's `Link: rel=next` URL; it never computes page numbers.
CREATE TABLE list_cursors (
    product_id INTEGER PRIMARY KEY,
    -- the next page's URL exactly as the Link header gave it; NULL when complete
    next_url   TEXT,
    -- the page number next_url refers to (1-based), for batches and reports
    next_page  INTEGER NOT NULL,
    -- 1 once the last page (no Link header) was recorded
    complete   INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
    updated_at TEXT    NOT NULL
);

-- One batch per page of a product's ticket list (at most 20 tickets). Its state is derived from
-- its tickets (view batch_states), never stored, so it can never disagree with them.
CREATE TABLE batches (
    id           INTEGER PRIMARY KEY,
    product_id   INTEGER NOT NULL,
    page         INTEGER NOT NULL,
    -- how many tickets the page listed when it was last recorded
    ticket_count INTEGER NOT NULL,
    listed_at    TEXT    NOT NULL,
    UNIQUE (product_id, page)
);

-- One row per Desk360 ticket ever listed: its state in the pipeline, its detail (raw and
-- normalized) once fetched, and why it failed when it did.
--   pending   listed, detail not fetched (or the source changed since it was fetched)
--   extracted detail stored, waiting for the loader
--   loading   claimed by a loader (moved back to extracted/pending at startup after a crash)
--   loaded    every write done in Deskie
--   failed    see failure_stage / failure_class and the failures table
--   skipped   deliberately not migrated (skip_reason)
CREATE TABLE tickets (
    product_id        INTEGER NOT NULL,
    ticket_id         INTEGER NOT NULL,
    -- the batch (list page) the ticket was last listed on with a new updated_at
    batch_id          INTEGER NOT NULL REFERENCES batches (id),
    state             TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'extracted', 'loading', 'loaded', 'failed', 'skipped')),
    -- Desk360 `updated_at` exactly as the list sent it: an unchanged value means no re-fetch
    listed_updated_at TEXT    NOT NULL,
    -- the listed_updated_at value the stored detail corresponds to; differs: the detail is stale
    fetched_updated_at TEXT,
    -- 1 when a newer detail arrived while a loader held the ticket: load it again afterwards
    reload            INTEGER NOT NULL DEFAULT 0 CHECK (reload IN (0, 1)),
    -- set when state = failed: where it failed and whether retrying may help by itself
    failure_stage     TEXT    CHECK (failure_stage IN ('extract', 'load')),
    failure_class     TEXT    CHECK (failure_class IN ('permanent', 'transient')),
    -- set when state = skipped: why (e.g. "channel Chat mapped to skip")
    skip_reason       TEXT,
    -- normalized columns, the fields of model::Ticket (rebuilt from these rows)
    subject           TEXT,
    customer_name     TEXT,
    customer_email    TEXT,
    customer_phone    TEXT,
    channel           TEXT,
    platform          TEXT,
    status            INTEGER,
    priority          INTEGER,
    agent_id          INTEGER,
    type_id           INTEGER,
    reason_id         INTEGER,
    created_at        TEXT,
    -- Desk360 `updated_at` as the detail sent it (model::Ticket::updated_at)
    detail_updated_at TEXT,
    -- counts for status/reports without reading messages
    message_count     INTEGER NOT NULL DEFAULT 0, -- replies
    note_count        INTEGER NOT NULL DEFAULT 0, -- internal notes
    attachment_count  INTEGER NOT NULL DEFAULT 0,
    attachment_bytes  INTEGER NOT NULL DEFAULT 0, -- sum of known sizes
    listed_at         TEXT    NOT NULL,
    extracted_at      TEXT,
    loaded_at         TEXT,
    PRIMARY KEY (product_id, ticket_id)
);
-- the loader's claim scans by state in listing order; reports group by state and batch
CREATE INDEX tickets_state_batch ON tickets (state, batch_id);
CREATE INDEX tickets_batch ON tickets (batch_id, state);

-- The ticket detail JSON exactly as Desk360 sent it, apart from the tickets table so that scans
-- of ticket states and counters never wade through large documents.
CREATE TABLE ticket_raw (
    product_id INTEGER NOT NULL,
    ticket_id  INTEGER NOT NULL,
    raw        TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id) ON DELETE CASCADE
);

-- The batch state derived from its tickets: any failed -> failed; all loaded or skipped (or none
-- left, e.g. an empty last page) -> loaded; some loading or loaded -> loading; any pending ->
-- pending; else extracted. Reads only the covering index tickets_batch.
CREATE VIEW batch_states AS
SELECT b.id, b.product_id, b.page, b.ticket_count,
       CASE
           WHEN coalesce(sum(t.state = 'failed'), 0) > 0 THEN 'failed'
           WHEN count(t.batch_id) = coalesce(sum(t.state IN ('loaded', 'skipped')), 0) THEN 'loaded'
           WHEN coalesce(sum(t.state IN ('loading', 'loaded', 'skipped')), 0) > 0 THEN 'loading'
           WHEN coalesce(sum(t.state = 'pending'), 0) > 0 THEN 'pending'
           ELSE 'extracted'
       END AS state
FROM batches b
LEFT JOIN tickets t ON t.batch_id = b.id
GROUP BY b.id;

-- The messages and notes of a ticket, replaced whole each time its detail is saved.
CREATE TABLE messages (
    product_id      INTEGER NOT NULL,
    ticket_id       INTEGER NOT NULL,
    -- 0-based index in write order (created_at, then Desk360 id), as model::Ticket holds them
    position        INTEGER NOT NULL,
    message_id      INTEGER NOT NULL, -- Desk360 message id
    -- 'customer' or 'agent'; author_agent_id is the Desk360 agent id when 'agent'
    author_kind     TEXT    NOT NULL CHECK (author_kind IN ('customer', 'agent')),
    author_agent_id INTEGER,
    kind            TEXT    NOT NULL CHECK (kind IN ('reply', 'note')),
    body            TEXT    NOT NULL, -- HTML as Desk360 stores it
    created_at      TEXT    NOT NULL, -- naive, source time zone
    PRIMARY KEY (product_id, ticket_id, position),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id) ON DELETE CASCADE
);

-- Attachment references of a message (Deskie fetches them by URL).
CREATE TABLE attachments (
    product_id INTEGER NOT NULL,
    ticket_id  INTEGER NOT NULL,
    position   INTEGER NOT NULL, -- the message's position
    idx        INTEGER NOT NULL, -- order within the message
    url        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL, -- image | video | file | other (Desk360's group)
    size       INTEGER,          -- bytes, when the source says
    PRIMARY KEY (product_id, ticket_id, position, idx),
    FOREIGN KEY (product_id, ticket_id, position)
        REFERENCES messages (product_id, ticket_id, position) ON DELETE CASCADE
);

-- Ticket -> Deskie case, from the create response. Kept across delta runs and retries so the loader
-- always continues the same case and never creates a second one.
CREATE TABLE case_map (
    product_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    case_id     INTEGER NOT NULL, -- Deskie case id
    case_number TEXT    NOT NULL, -- Deskie case number, e.g. "664-245651"
    user_id     INTEGER NOT NULL, -- Deskie user created with the case (for customer replies)
    mapped_at   TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- Desk360 message (or note) -> the Deskie message it became. A source id present here is never
-- written again.
CREATE TABLE message_map (
    product_id        INTEGER NOT NULL,
    ticket_id         INTEGER NOT NULL,
    source_message_id INTEGER NOT NULL,
    deskie_message_id INTEGER NOT NULL,
    mapped_at         TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id, source_message_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- A row means the final status/priority step of the case is done (or was not needed). Cleared when
-- a delta run sees the source ticket changed.
CREATE TABLE final_state (
    product_id INTEGER NOT NULL,
    ticket_id  INTEGER NOT NULL,
    done_at    TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- The write journal that gives exactly-once without idempotency keys: an intent is opened before a
-- write to Deskie and completed with the resulting id after it (in the same transaction as the id
-- map). An intent still open at startup is a write whose outcome is unknown: reconcile it by reading
-- Deskie before writing again.
CREATE TABLE intents (
    id           INTEGER PRIMARY KEY,
    product_id   INTEGER NOT NULL,
    ticket_id    INTEGER NOT NULL,
    -- create | message:<source id> | note:<source id> | update
    step         TEXT    NOT NULL,
    -- hash of the request body, to recognise the same write when reconciling
    payload_hash TEXT    NOT NULL,
    -- open: sent or about to be; done: result recorded; abandoned: known not to have happened
    state        TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'abandoned')),
    -- the Deskie id the write produced (case id or message id), when done
    result_id    INTEGER,
    created_at   TEXT    NOT NULL,
    finished_at  TEXT,
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);
-- never two open intents for the same write
CREATE UNIQUE INDEX intents_one_open ON intents (product_id, ticket_id, step) WHERE state = 'open';
CREATE INDEX intents_ticket ON intents (product_id, ticket_id);

-- Why things failed, for the report and retry-failed: one row per failing ticket and stage (or per
-- product list page when ticket_id is NULL), updated on every new attempt, deleted when that
-- ticket's stage later succeeds.
CREATE TABLE failures (
    id         INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL,
    ticket_id  INTEGER,           -- NULL: a list page failed (see page)
    page       INTEGER,           -- the list page, for page-level failures
    stage      TEXT    NOT NULL CHECK (stage IN ('extract', 'load')),
    -- what was being done: detail | list | create | message:<id> | note:<id> | update | mapping ...
    step       TEXT    NOT NULL,
    class      TEXT    NOT NULL CHECK (class IN ('permanent', 'transient')),
    code       TEXT,              -- HTTP status or the API's error code
    message    TEXT    NOT NULL,  -- the API's own message, or the mapping rule that refused
    request    TEXT,              -- the request that caused it, redacted by the caller
    attempts   INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT    NOT NULL,
    last_seen  TEXT    NOT NULL
);
CREATE UNIQUE INDEX failures_ticket ON failures (product_id, ticket_id, stage) WHERE ticket_id IS NOT NULL;
CREATE UNIQUE INDEX failures_page ON failures (product_id, page, stage) WHERE ticket_id IS NULL;

-- Request counters per side and minute, flushed by the engine every few seconds, for the report's
-- rate chart (budget use, 429s, transient errors).
CREATE TABLE request_log (
    side      TEXT    NOT NULL CHECK (side IN ('desk360', 'deskie')),
    minute    INTEGER NOT NULL, -- Unix seconds of the start of the minute
    requests  INTEGER NOT NULL DEFAULT 0,
    units     INTEGER NOT NULL DEFAULT 0, -- limiter cost (Deskie: GET 1, writes 2)
    throttled INTEGER NOT NULL DEFAULT 0, -- 429 responses
    transient INTEGER NOT NULL DEFAULT 0, -- 5xx, timeouts, resets
    PRIMARY KEY (side, minute)
) WITHOUT ROWID;
