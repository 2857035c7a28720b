-- Preflight findings, the probe journal, the trial selection and the rollback journal (issue 13).

-- What the last `preflight` found about the live accounts, as one JSON document the engine
-- writes and reads (engine::preflight::Findings): `run` follows it and refuses to start when a
-- finding has no fallback. One row per preflight; the newest is the one in force.
CREATE TABLE preflight_findings (
    id          INTEGER PRIMARY KEY,
    recorded_at TEXT    NOT NULL,
    -- 1 when the probe case was written (and deleted); 0 for `preflight --no-probe`
    probed      INTEGER NOT NULL CHECK (probed IN (0, 1)),
    findings    TEXT    NOT NULL
);

-- The probe case of each preflight: journaled before it is created, so a preflight killed before
-- it deleted its probe finds it at the next start and deletes it then.
--   open     created (or about to be); case_id / user_id known once Deskie answered
--   cleaned  the case and its user are deleted (or were never created)
CREATE TABLE preflight_probes (
    id          INTEGER PRIMARY KEY,
    -- the probe's customer address, under .invalid so no mail can ever be delivered
    address     TEXT    NOT NULL,
    -- the value the probe wrote into target.source_id_field, to find it again
    marker      TEXT    NOT NULL,
    case_id     INTEGER,
    user_id     INTEGER,
    state       TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'cleaned')),
    created_at  TEXT    NOT NULL,
    finished_at TEXT
);

-- The tickets a trial (`run --limit N`, `run --ticket P/T`) may load; replaced by each trial. A
-- normal run ignores it.
CREATE TABLE trial_selection (
    product_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    selected_at TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- The rollback journal: an intent is opened (committed) before the DELETE of a case and
-- completed, in ONE transaction with clearing the ticket's case map, message map and final
-- state, once Deskie confirmed it. An open intent at the next start is a delete of unknown
-- outcome: the case is read first (gone: complete it; still there: delete it).
CREATE TABLE rollback_intents (
    id          INTEGER PRIMARY KEY,
    product_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    case_id     INTEGER NOT NULL, -- the Deskie case being deleted
    state       TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'abandoned')),
    created_at  TEXT    NOT NULL,
    finished_at TEXT,
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);
CREATE UNIQUE INDEX rollback_one_open ON rollback_intents (product_id, ticket_id) WHERE state = 'open';
