-- Listing by high-water mark (issue: exact under every reading of the Desk360 list page).
--
-- Tickets are listed in Desk360's documented default order, newest update first, so a ticket
-- updated or created while a pass runs moves to page 1 and nothing that existed is skipped. After a
-- full pass, catch-ups read from page 1 down to the mark of the previous listing until one finds
-- nothing new; a later run (switch-over day) only catches up from the stored mark.

-- 'full': a pass over every page; 'catchup': from page 1 down to stop_at.
ALTER TABLE list_cursors ADD COLUMN mode TEXT NOT NULL DEFAULT 'full'
    CHECK (mode IN ('full', 'catchup'));
-- a catch-up stops after the first page holding a ticket updated before this (minus a margin);
-- NULL: read every page
ALTER TABLE list_cursors ADD COLUMN stop_at TEXT;
-- the newest updated_at on page 1 when the current listing started: its mark once complete
ALTER TABLE list_cursors ADD COLUMN top TEXT;
-- the high-water mark of the last complete listing: everything updated up to it is listed
ALTER TABLE list_cursors ADD COLUMN mark TEXT;

-- What Desk360's ticket detail held that was carried over with a change of meaning avoided
-- (e.g. a message of an unknown type migrated as an internal note): one line each, newline-
-- separated; NULL when there was nothing. The report counts and lists them.
ALTER TABLE tickets ADD COLUMN source_warnings TEXT;
