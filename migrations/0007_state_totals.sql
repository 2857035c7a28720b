-- Running totals for `status` and reports (issue 14.4: `status` under a second on a store of
-- 2 M tickets). Counting by state and deriving every batch's state from its tickets scan the
-- whole tickets table (seconds at that size); these two small tables are kept exact by triggers
-- on `tickets`, in the same transaction as every change of a ticket, so they can never disagree
-- with the rows they sum.

-- Tickets and their content counters per product and state: what `Store::counts` reports.
CREATE TABLE ticket_totals (
    product_id  INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    tickets     INTEGER NOT NULL DEFAULT 0,
    messages    INTEGER NOT NULL DEFAULT 0, -- sum of tickets.message_count
    notes       INTEGER NOT NULL DEFAULT 0, -- sum of tickets.note_count
    attachments INTEGER NOT NULL DEFAULT 0, -- sum of tickets.attachment_count
    bytes       INTEGER NOT NULL DEFAULT 0, -- sum of tickets.attachment_bytes
    PRIMARY KEY (product_id, state)
) WITHOUT ROWID;

-- Per batch, how many of its tickets are in each group the batch state rule looks at (see the
-- view batch_states): its state follows from these five numbers without reading tickets.
CREATE TABLE batch_totals (
    batch_id INTEGER PRIMARY KEY,
    tickets  INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0, -- state = failed
    done     INTEGER NOT NULL DEFAULT 0, -- loaded or skipped
    started  INTEGER NOT NULL DEFAULT 0, -- loading, loaded or skipped
    pending  INTEGER NOT NULL DEFAULT 0  -- pending
);

INSERT INTO ticket_totals (product_id, state, tickets, messages, notes, attachments, bytes)
SELECT product_id, state, count(*), sum(message_count), sum(note_count), sum(attachment_count),
       sum(attachment_bytes)
FROM tickets GROUP BY product_id, state;

INSERT INTO batch_totals (batch_id, tickets, failed, done, started, pending)
SELECT batch_id, count(*), sum(state = 'failed'), sum(state IN ('loaded', 'skipped')),
       sum(state IN ('loading', 'loaded', 'skipped')), sum(state = 'pending')
FROM tickets GROUP BY batch_id;

CREATE TRIGGER tickets_totals_insert AFTER INSERT ON tickets
BEGIN
    INSERT OR IGNORE INTO ticket_totals (product_id, state) VALUES (NEW.product_id, NEW.state);
    UPDATE ticket_totals SET tickets = tickets + 1, messages = messages + NEW.message_count,
        notes = notes + NEW.note_count, attachments = attachments + NEW.attachment_count,
        bytes = bytes + NEW.attachment_bytes
    WHERE product_id = NEW.product_id AND state = NEW.state;
    INSERT OR IGNORE INTO batch_totals (batch_id) VALUES (NEW.batch_id);
    UPDATE batch_totals SET tickets = tickets + 1, failed = failed + (NEW.state = 'failed'),
        done = done + (NEW.state IN ('loaded', 'skipped')),
        started = started + (NEW.state IN ('loading', 'loaded', 'skipped')),
        pending = pending + (NEW.state = 'pending')
    WHERE batch_id = NEW.batch_id;
END;

CREATE TRIGGER tickets_totals_delete AFTER DELETE ON tickets
BEGIN
    UPDATE ticket_totals SET tickets = tickets - 1, messages = messages - OLD.message_count,
        notes = notes - OLD.note_count, attachments = attachments - OLD.attachment_count,
        bytes = bytes - OLD.attachment_bytes
    WHERE product_id = OLD.product_id AND state = OLD.state;
    UPDATE batch_totals SET tickets = tickets - 1, failed = failed - (OLD.state = 'failed'),
        done = done - (OLD.state IN ('loaded', 'skipped')),
        started = started - (OLD.state IN ('loading', 'loaded', 'skipped')),
        pending = pending - (OLD.state = 'pending')
    WHERE batch_id = OLD.batch_id;
END;

CREATE TRIGGER tickets_totals_update
AFTER UPDATE OF product_id, state, message_count, note_count, attachment_count, attachment_bytes
ON tickets
WHEN OLD.product_id IS NOT NEW.product_id OR OLD.state IS NOT NEW.state
  OR OLD.message_count IS NOT NEW.message_count OR OLD.note_count IS NOT NEW.note_count
  OR OLD.attachment_count IS NOT NEW.attachment_count
  OR OLD.attachment_bytes IS NOT NEW.attachment_bytes
BEGIN
    UPDATE ticket_totals SET tickets = tickets - 1, messages = messages - OLD.message_count,
        notes = notes - OLD.note_count, attachments = attachments - OLD.attachment_count,
        bytes = bytes - OLD.attachment_bytes
    WHERE product_id = OLD.product_id AND state = OLD.state;
    INSERT OR IGNORE INTO ticket_totals (product_id, state) VALUES (NEW.product_id, NEW.state);
    UPDATE ticket_totals SET tickets = tickets + 1, messages = messages + NEW.message_count,
        notes = notes + NEW.note_count, attachments = attachments + NEW.attachment_count,
        bytes = bytes + NEW.attachment_bytes
    WHERE product_id = NEW.product_id AND state = NEW.state;
END;

CREATE TRIGGER tickets_batch_totals_update AFTER UPDATE OF batch_id, state ON tickets
WHEN OLD.batch_id IS NOT NEW.batch_id OR OLD.state IS NOT NEW.state
BEGIN
    UPDATE batch_totals SET tickets = tickets - 1, failed = failed - (OLD.state = 'failed'),
        done = done - (OLD.state IN ('loaded', 'skipped')),
        started = started - (OLD.state IN ('loading', 'loaded', 'skipped')),
        pending = pending - (OLD.state = 'pending')
    WHERE batch_id = OLD.batch_id;
    INSERT OR IGNORE INTO batch_totals (batch_id) VALUES (NEW.batch_id);
    UPDATE batch_totals SET tickets = tickets + 1, failed = failed + (NEW.state = 'failed'),
        done = done + (NEW.state IN ('loaded', 'skipped')),
        started = started + (NEW.state IN ('loading', 'loaded', 'skipped')),
        pending = pending + (NEW.state = 'pending')
    WHERE batch_id = NEW.batch_id;
END;
