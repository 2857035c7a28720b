-- Attachments (issue 12): what happened to every file, the inline-image edits as a journal, and
-- the dry run's check of `urls`-mode links.

-- One row per file a write carries or leaves out, keyed by the write (the Desk360 message id, or
-- a follow-up note's synthetic negative id), the way it goes (mode) and its URL; a later attempt
-- of the same write replaces the row. An 'attached' file went with its write: it is in Deskie
-- once that write is (case_map for the create, message_map for a message or note), which the
-- reader joins, so a kill between the write and any bookkeeping cannot lose the count.
CREATE TABLE attachment_files (
    product_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    -- the write the file belongs to: the case create (its first message) or a message / note
    write_kind  TEXT    NOT NULL CHECK (write_kind IN ('create', 'message')),
    write_id    INTEGER NOT NULL,
    -- upload: multipart part; url: attachment_urls to Desk360 storage; inline: an <img> uploaded
    -- with its message (inline = "rehost")
    mode        TEXT    NOT NULL CHECK (mode IN ('upload', 'url', 'inline')),
    url         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    -- bytes: learned from the download when Desk360 did not say
    size        INTEGER,
    -- attached: sent with its write; too_large: over Deskie's 25 MB; refused: the storage said
    -- no (status); failed: the download broke off or failed otherwise (reason)
    outcome     TEXT    NOT NULL CHECK (outcome IN ('attached', 'too_large', 'refused', 'failed')),
    status      INTEGER,
    reason      TEXT,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (product_id, ticket_id, write_id, mode, url),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- The edit that points a rehosted message's inline images at Deskie's copies, journaled: opened
-- right after the message write with what the new HTML is built from, closed when Deskie
-- answered. An open row (or a written message of the plan with no row) is sent again on the next
-- load of the ticket; an edit replaces the HTML, so sending it twice is harmless.
CREATE TABLE rehost_edits (
    product_id        INTEGER NOT NULL,
    ticket_id         INTEGER NOT NULL,
    -- the Desk360 message whose HTML is edited
    source_id         INTEGER NOT NULL,
    case_id           INTEGER NOT NULL,
    deskie_message_id INTEGER NOT NULL,
    note              INTEGER NOT NULL CHECK (note IN (0, 1)),
    -- JSON object: Desk360 src -> URL of the Deskie copy
    replace           TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'failed')),
    -- why a failed edit was refused (the images keep their Desk360 links)
    reason            TEXT,
    opened_at         TEXT    NOT NULL,
    finished_at       TEXT,
    PRIMARY KEY (product_id, ticket_id, source_id),
    FOREIGN KEY (product_id, ticket_id) REFERENCES tickets (product_id, ticket_id)
);

-- The dry run's check of a sample of attachment links fetched without credentials (urls mode):
-- how many need Desk360's credentials or carry an expiry. The report shows the latest.
CREATE TABLE attachment_link_checks (
    id          INTEGER PRIMARY KEY,
    checked_at  TEXT    NOT NULL,
    sampled     INTEGER NOT NULL,
    not_public  INTEGER NOT NULL,
    expiring    INTEGER NOT NULL,
    -- one line per link that is not public or expires: ticket, name, what was seen
    detail      TEXT    NOT NULL
);
