-- `verify` that fits the budget (issue 14.3) and the "history complete up to" date of long runs
-- (issue 14.2).
--
-- A verification reads Deskie's plain case list (pages of 100, documented default order) once,
-- keeps what the case-level checks need of every case it saw, reads directly only the cases the
-- walk did not show, then reads the messages of the cases in its scope. Every step is recorded
-- as it completes, so a killed `verify` started again with the same scope resumes where it was.

-- One verification: its scope, where its case-list walk stands, what it spent and when it ended.
CREATE TABLE verify_runs (
    id          INTEGER PRIMARY KEY,
    -- canonical text of the scope (sample, seed, product, since): the same scope resumes
    scope       TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    -- the next page of the case list to read; list_done = 1 once the walk is over
    next_page   INTEGER NOT NULL DEFAULT 1,
    list_done   INTEGER NOT NULL DEFAULT 0 CHECK (list_done IN (0, 1)),
    -- 1 once every stored case was accounted for and the case-level findings are written
    cases_done  INTEGER NOT NULL DEFAULT 0 CHECK (cases_done IN (0, 1)),
    -- requests spent so far, by kind
    list_reads  INTEGER NOT NULL DEFAULT 0,
    case_reads  INTEGER NOT NULL DEFAULT 0,
    message_reads INTEGER NOT NULL DEFAULT 0,
    -- the cost stated before it started (JSON of engine::verify::VerifyPlan)
    plan        TEXT    NOT NULL
);

-- What a verification saw of each Deskie case: from the case list, or from a direct read of a
-- case the list did not show (via = 'view'); a case that answered 404 has found = 0.
CREATE TABLE verify_seen (
    verify_id  INTEGER NOT NULL REFERENCES verify_runs (id) ON DELETE CASCADE,
    case_id    INTEGER NOT NULL,
    via        TEXT    NOT NULL CHECK (via IN ('list', 'view')),
    found      INTEGER NOT NULL DEFAULT 1 CHECK (found IN (0, 1)),
    status     TEXT,
    priority   TEXT,
    -- the ticket named by the source key custom field, when the case carries one
    src_product INTEGER,
    src_ticket  INTEGER,
    user_id    INTEGER,
    subject    TEXT,
    created_at TEXT,
    deleted    INTEGER NOT NULL DEFAULT 0,
    spam       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (verify_id, case_id)
) WITHOUT ROWID;
CREATE INDEX verify_seen_source ON verify_seen (verify_id, src_product, src_ticket);
CREATE INDEX verify_seen_triple ON verify_seen (verify_id, user_id, created_at);

-- Tickets whose message-level check is done in a verification (a restart skips them).
CREATE TABLE verify_done (
    verify_id  INTEGER NOT NULL REFERENCES verify_runs (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL,
    ticket_id  INTEGER NOT NULL,
    PRIMARY KEY (verify_id, product_id, ticket_id)
) WITHOUT ROWID;

-- What a verification found, one row per problem; the report lists them.
CREATE TABLE verify_findings (
    id         INTEGER PRIMARY KEY,
    verify_id  INTEGER NOT NULL REFERENCES verify_runs (id) ON DELETE CASCADE,
    -- missing_case | trashed_case | duplicated_case | status | priority | missing_message |
    -- duplicated_message | out_of_order | unexpected_message
    kind       TEXT    NOT NULL,
    product_id INTEGER,
    ticket_id  INTEGER,
    case_id    INTEGER,
    detail     TEXT    NOT NULL
);
CREATE INDEX verify_findings_run ON verify_findings (verify_id, kind);

-- The "history complete up to" date: per state and product, the newest and oldest listed
-- updated_at are one index seek each, so the progress line can ask every few seconds.
CREATE INDEX tickets_state_updated ON tickets (state, product_id, listed_updated_at);
