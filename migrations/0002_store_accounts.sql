-- The two accounts a store belongs to (issue #11.3). A store's id maps only make sense against
-- the Deskie account its cases were created in, and its tickets only against the Desk360 account
-- they were read from: pointed at another target, a finished store would say "done" and write
-- nothing; pointed at another source with the same product ids, it would append that account's
-- replies to the first account's cases. The first run (a dry run too) records both sides; every
-- later writing command compares before it writes and refuses a different account.
CREATE TABLE accounts (
    -- which side: the source or the target
    side        TEXT PRIMARY KEY CHECK (side IN ('desk360', 'deskie')),
    -- the base URL the run used (scheme, host, port, path; no credentials, no query)
    base_url    TEXT NOT NULL,
    -- what identifies the account on that side: Desk360, what `/v1/me` answered (JSON);
    -- Deskie, the account host (`acme.deskie.io`, with the port when it is not the default)
    account     TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
