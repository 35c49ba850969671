-- Write several ledger entries in one call (one transaction, one commit): the entries that
-- threads of one process submit at the same moment (credits.services._combining). Each entry
-- is exactly the one-statement path's conditional UPDATE of its account and INSERT of its
-- row, in a subtransaction of its own, so one entry's failure (a duplicate idempotency key, a
-- broken constraint) undoes that entry only and is reported in its row; an entry whose account
-- would go below zero moves nothing and reports no entry id. Rows come back in input order.
-- An account that another transaction holds locked for longer than p_lock_wait fails its
-- entry with lock_not_available (55P03): its caller then writes it alone and waits there, so
-- one busy account never holds up the other entries of the call.
CREATE OR REPLACE FUNCTION credits_post_entries(
    p_account bigint[],
    p_kind varchar[],
    p_earned numeric[],
    p_spent numeric[],
    p_key varchar[],
    p_source varchar[],
    p_description varchar[],
    p_metadata jsonb[],
    p_created timestamptz,
    p_lock_wait text
) RETURNS TABLE (
    o_entry bigint,
    o_balance numeric,
    o_earned numeric,
    o_spent numeric,
    o_sqlstate text,
    o_message text
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait, true);
    FOR i IN 1 .. coalesce(array_length(p_account, 1), 0) LOOP
        o_entry := NULL;
        o_balance := NULL;
        o_earned := NULL;
        o_spent := NULL;
        o_sqlstate := NULL;
        o_message := NULL;
        BEGIN
            UPDATE credits_creditaccount AS account
            SET balance = account.balance + p_earned[i] - p_spent[i],
                total_earned = account.total_earned + p_earned[i],
                total_spent = account.total_spent + p_spent[i],
                updated_at = p_created
            WHERE account.id = p_account[i]
              AND account.balance + p_earned[i] - p_spent[i] >= 0
            RETURNING account.balance, account.total_earned, account.total_spent
            INTO o_balance, o_earned, o_spent;
            IF FOUND THEN
                INSERT INTO credits_credittransaction (
                    account_id, kind, amount, idempotency_key, created_at, source, description,
                    stripe_event_id, legacy_transaction_id, migrated_from, metadata, actor_id,
                    reason, reverses_id, balance_before, balance_after
                ) VALUES (
                    p_account[i], p_kind[i], p_earned[i] - p_spent[i], p_key[i], p_created,
                    p_source[i], p_description[i], NULL, NULL, '', p_metadata[i], NULL, '', NULL,
                    o_balance - p_earned[i] + p_spent[i], o_balance
                )
                RETURNING id INTO o_entry;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            o_entry := NULL;
            o_balance := NULL;
            o_earned := NULL;
            o_spent := NULL;
            o_sqlstate := SQLSTATE;
            o_message := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- reverse
DROP FUNCTION IF EXISTS credits_post_entries(
    bigint[], varchar[], numeric[], numeric[], varchar[], varchar[], varchar[], jsonb[],
    timestamptz, text
);
