-- Entries of concurrent threads are no longer combined into shared calls, so the function
-- that wrote them (migration 0006) goes.
DROP FUNCTION IF EXISTS credits_post_entries(json, timestamptz, text);

-- reverse

-- The function as 0006 installed it.
CREATE OR REPLACE FUNCTION credits_post_entries(
    p_entries json,
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
DECLARE
    n integer;
    p_account bigint[];
    p_kind varchar[];
    p_earned numeric[];
    p_spent numeric[];
    p_key varchar[];
    p_source varchar[];
    p_description varchar[];
    p_metadata jsonb[];
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait, true);
    SELECT count(*),
           array_agg(e.account ORDER BY e.ord), array_agg(e.kind ORDER BY e.ord),
           array_agg(e.earned ORDER BY e.ord), array_agg(e.spent ORDER BY e.ord),
           array_agg(e.key ORDER BY e.ord), array_agg(e.source ORDER BY e.ord),
           array_agg(e.description ORDER BY e.ord), array_agg(e.metadata ORDER BY e.ord)
    INTO n, p_account, p_kind, p_earned, p_spent, p_key, p_source,
         p_description, p_metadata
    FROM ROWS FROM (json_to_recordset(p_entries) AS (
        account bigint, kind varchar, earned numeric, spent numeric, key varchar,
        source varchar, description varchar, metadata jsonb
    )) WITH ORDINALITY AS e(account, kind, earned, spent, key, source, description, metadata, ord);

    FOR i IN 1 .. coalesce(n, 0) LOOP
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
                    account_id, kind, amount, idempotency_key, created_at, source,
                    description, stripe_event_id, legacy_transaction_id, migrated_from,
                    metadata, actor_id, reason, reverses_id, balance_before, balance_after
                ) VALUES (
                    p_account[i], p_kind[i], p_earned[i] - p_spent[i], p_key[i], p_created,
                    p_source[i], p_description[i], NULL, NULL, '', p_metadata[i], NULL, '',
                    NULL, o_balance - p_earned[i] + p_spent[i], o_balance
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
