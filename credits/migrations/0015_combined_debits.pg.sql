-- PostgreSQL's fast path for several debits of one account at once (credits.services.posting.
-- combining): a process whose threads spend from the same account at the same moment writes
-- them in one call and one transaction, so the account's row lock is taken once and the disk
-- flushed once for all of them, instead of each waiting for the previous one's commit.
--
-- The items are taken in the order given, each against what the earlier ones left, exactly
-- as that many calls of credits_post_debit (migration 0011) would: an item is written when
-- the account's available credits (balance - held) cover it and its total stays within the
-- column, and refused otherwise (o_entry NULL, nothing moved); an item whose idempotency key
-- is already in the ledger, or earlier in the call, is not written (o_duplicate: the caller
-- answers it as a replay). The written items are then drawn from the lots by the rule as one
-- run of credits, in order: each entry takes the next stretch of it, so each allocation is
-- what that entry would have taken alone. The statements: one lock of the account, one UPDATE
-- of it, one INSERT of the entries, one statement for the allocations and the lots, whatever
-- the number of items. Anything that raises (a key that a concurrent transaction wrote
-- meanwhile, a constraint) rolls the whole call back, and the caller writes each item alone.
-- Debits that name a lot to take first (a refund of a purchase) are not sent here.
CREATE OR REPLACE FUNCTION credits_post_debits(
    p_account bigint,
    p_kinds varchar[],
    p_earned numeric[],
    p_spent numeric[],
    p_keys varchar[],
    p_created timestamptz[],
    p_sources varchar[],
    p_descriptions varchar[],
    p_stripe_events varchar[],
    p_metadata jsonb[],
    p_actors bigint[],
    p_reasons text[],
    p_categories varchar[],
    p_ranks integer[],
    p_max numeric
) RETURNS TABLE (
    o_item integer,
    o_entry bigint,
    o_balance numeric,
    o_earned numeric,
    o_spent numeric,
    o_duplicate boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := coalesce(array_length(p_keys, 1), 0);
    v_taken varchar[];
    v_balance numeric;
    v_held numeric;
    v_earned numeric;
    v_spent numeric;
    v_amount numeric;
    v_written integer[] := '{}';
    v_before numeric[] := '{}';
    v_after numeric[] := '{}';
    v_from numeric[] := '{}';
    v_to numeric[] := '{}';
    v_earned_after numeric[] := '{}';
    v_spent_after numeric[] := '{}';
    v_duplicate boolean[] := '{}';
    v_drawn numeric := 0;
    v_entries bigint[] := '{}';
    v_allocated numeric;
    v_k integer;
BEGIN
    SELECT balance, held, total_earned, total_spent INTO v_balance, v_held, v_earned, v_spent
    FROM credits_creditaccount WHERE id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no account %', p_account USING ERRCODE = 'no_data_found';
    END IF;
    SELECT coalesce(array_agg(idempotency_key), '{}') INTO v_taken
    FROM credits_credittransaction WHERE idempotency_key = ANY (p_keys);
    -- Which items are written, and the balance each leaves: in memory, in order.
    FOR i IN 1 .. v_count LOOP
        v_amount := p_earned[i] - p_spent[i];
        v_duplicate := v_duplicate || (p_keys[i] = ANY (v_taken));
        IF v_duplicate[i] THEN
            CONTINUE;
        END IF;
        v_taken := v_taken || p_keys[i];
        IF v_balance + v_amount >= v_held AND v_spent + p_spent[i] <= p_max THEN
            v_written := v_written || i;
            v_before := v_before || v_balance;
            v_balance := v_balance + v_amount;
            v_earned := v_earned + p_earned[i];
            v_spent := v_spent + p_spent[i];
            v_after := v_after || v_balance;
            v_earned_after := v_earned_after || v_earned;
            v_spent_after := v_spent_after || v_spent;
            v_from := v_from || v_drawn;
            v_drawn := v_drawn - v_amount;
            v_to := v_to || v_drawn;
        END IF;
    END LOOP;
    IF cardinality(v_written) > 0 THEN
        UPDATE credits_creditaccount
        SET balance = v_balance, total_earned = v_earned, total_spent = v_spent,
            updated_at = p_created[v_written[cardinality(v_written)]]
        WHERE id = p_account;
        WITH inserted AS (
            INSERT INTO credits_credittransaction (
                account_id, kind, amount, idempotency_key, created_at, source, description,
                stripe_event_id, legacy_transaction_id, migrated_from, metadata, actor_id,
                reason, reverses_id, balance_before, balance_after
            )
            SELECT p_account, p_kinds[w.item], p_earned[w.item] - p_spent[w.item],
                   p_keys[w.item], p_created[w.item], p_sources[w.item],
                   p_descriptions[w.item], p_stripe_events[w.item], NULL, '',
                   p_metadata[w.item], p_actors[w.item], p_reasons[w.item], NULL,
                   w.before, w.after
            FROM unnest(v_written, v_before, v_after) WITH ORDINALITY AS w(item, before, after, n)
            ORDER BY w.n
            RETURNING id, idempotency_key
        )
        SELECT array_agg(inserted.id ORDER BY w.item) INTO v_entries
        FROM inserted JOIN unnest(v_written) AS w(item) ON inserted.idempotency_key = p_keys[w.item];
        -- The run of credits drawn, [0, v_drawn): entry k takes [v_from[k], v_to[k]), lot l
        -- gives [its start, its end) in the rule's order; an allocation is their overlap.
        WITH lot AS (
            SELECT lot.id, lot.remaining,
                   sum(lot.remaining) OVER (
                       ORDER BY coalesce(p_ranks[array_position(p_categories, lot.category)], 1000),
                                lot.expires_at ASC NULLS LAST, lot.priority, lot.effective_at,
                                lot.id
                   ) AS upto
            FROM credits_creditlot lot
            WHERE lot.account_id = p_account AND lot.remaining > 0
        ), wanted AS (
            SELECT e.entry, e.lo, e.hi
            FROM unnest(v_entries, v_from, v_to) AS e(entry, lo, hi)
        ), allocation AS (
            SELECT wanted.entry, lot.id AS lot,
                   least(wanted.hi, lot.upto) - greatest(wanted.lo, lot.upto - lot.remaining)
                       AS amount
            FROM wanted JOIN lot
              ON lot.upto - lot.remaining < wanted.hi AND lot.upto > wanted.lo
        ), allocated AS (
            INSERT INTO credits_creditallocation (entry_id, lot_id, amount)
            SELECT entry, lot, amount FROM allocation
        ), moved AS (
            UPDATE credits_creditlot lot SET remaining = lot.remaining - taken.amount
            FROM (SELECT allocation.lot, sum(allocation.amount) AS amount
                  FROM allocation GROUP BY allocation.lot) taken
            WHERE lot.id = taken.lot
        )
        SELECT coalesce(sum(amount), 0) INTO v_allocated FROM allocation;
        IF v_allocated <> v_drawn THEN
            RAISE EXCEPTION 'lots of account % hold % of the % to draw',
                p_account, v_allocated, v_drawn
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    -- One row per item, in order: what was written, refused or already there.
    FOR i IN 1 .. v_count LOOP
        o_item := i;
        o_entry := NULL;
        o_balance := NULL;
        o_earned := NULL;
        o_spent := NULL;
        o_duplicate := v_duplicate[i];
        v_k := array_position(v_written, i);
        IF v_k IS NOT NULL THEN
            o_entry := v_entries[v_k];
            o_balance := v_after[v_k];
            o_earned := v_earned_after[v_k];
            o_spent := v_spent_after[v_k];
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- reverse
DROP FUNCTION IF EXISTS credits_post_debits(
    bigint, varchar[], numeric[], numeric[], varchar[], timestamptz[], varchar[], varchar[],
    varchar[], jsonb[], bigint[], text[], varchar[], integer[], numeric
);
