-- The ledger is append-only: PostgreSQL refuses UPDATE and DELETE on entries, whoever asks.
-- A correction is a new `reversal` entry. TRUNCATE (test teardown, a deliberate wipe) is a
-- separate statement and is not refused.

CREATE OR REPLACE FUNCTION credits_refuse_ledger_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'credits_credittransaction is append-only: % refused on entry %', TG_OP, OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credits_ledger_append_only
    BEFORE UPDATE OR DELETE ON credits_credittransaction
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_ledger_change();

-- reverse

DROP TRIGGER IF EXISTS credits_ledger_append_only ON credits_credittransaction;
DROP FUNCTION IF EXISTS credits_refuse_ledger_change();
