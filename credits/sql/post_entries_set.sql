-- Write several ledger entries in one call (one transaction, one commit): the entries that
-- threads of one process submit at the same moment (credits.services._combining). Replaces the
-- array-taking credits_post_entries of post_entries.sql (migration 0005) with the same outcome
-- per entry, and two differences:
--
-- * The entries come as one JSON array of objects (account, kind, earned, spent, key, source,
--   description, metadata), amounts as strings so they stay exact: psycopg dumps a str in C,
--   where it dumps each element of eight arrays in Python.
-- * A call whose entries name distinct accounts (spends of different users at the same moment,
--   the common case) is written as a set: its accounts locked in ascending id order, then one
--   UPDATE moves every balance that stays >= 0 and one INSERT writes their entries, instead of
--   two statements and a subtransaction per entry. If that write fails at all (a duplicate
--   idempotency key, a broken constraint, an account locked elsewhere for longer than
--   p_lock_wait), nothing of it is kept and the call goes on one entry at a time as before.
--
-- One entry at a time: each entry is the one-statement path's conditional UPDATE of its account
-- and INSERT of its row, in a subtransaction of its own, so one entry's failure undoes that
-- entry only and is reported in its row (o_sqlstate, o_message). Either way an entry whose
-- account would go below zero moves nothing and reports no entry id, an account that another
-- transaction holds locked for longer than p_lock_wait fails its entry with lock_not_available
-- (55P03; its caller then writes it alone), and rows come back in input order.
DROP FUNCTION IF EXISTS credits_post_entries(
    bigint[], varchar[], numeric[], numeric[], varchar[], varchar[], varchar[], jsonb[],
    timestamptz, text
);

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
    distinct_accounts integer;
    as_set boolean := false;
    p_account bigint[];
    p_kind varchar[];
    p_earned numeric[];
    p_spent numeric[];
    p_key varchar[];
    p_source varchar[];
    p_description varchar[];
    p_metadata jsonb[];
    set_entry bigint[];
    set_balance numeric[];
    set_earned numeric[];
    set_spent numeric[];
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait, true);
    SELECT count(*), count(DISTINCT e.account),
           array_agg(e.account ORDER BY e.ord), array_agg(e.kind ORDER BY e.ord),
           array_agg(e.earned ORDER BY e.ord), array_agg(e.spent ORDER BY e.ord),
           array_agg(e.key ORDER BY e.ord), array_agg(e.source ORDER BY e.ord),
           array_agg(e.description ORDER BY e.ord), array_agg(e.metadata ORDER BY e.ord)
    INTO n, distinct_accounts, p_account, p_kind, p_earned, p_spent, p_key, p_source,
         p_description, p_metadata
    FROM ROWS FROM (json_to_recordset(p_entries) AS (
        account bigint, kind varchar, earned numeric, spent numeric, key varchar,
        source varchar, description varchar, metadata jsonb
    )) WITH ORDINALITY AS e(account, kind, earned, spent, key, source, description, metadata, ord);

    IF n > 1 AND distinct_accounts = n THEN
        BEGIN
            -- Ascending id order, as every writer of several accounts locks them.
            PERFORM 1 FROM credits_creditaccount AS account
            WHERE account.id = ANY (p_account)
            ORDER BY account.id
            FOR NO KEY UPDATE;
            WITH input AS (
                SELECT *
                FROM unnest(p_account, p_kind, p_earned, p_spent, p_key, p_source,
                            p_description, p_metadata)
                     WITH ORDINALITY AS t(account_id, kind, earned, spent, key, source,
                                          description, metadata, ord)
            ), moved AS (
                UPDATE credits_creditaccount AS account
                SET balance = account.balance + input.earned - input.spent,
                    total_earned = account.total_earned + input.earned,
                    total_spent = account.total_spent + input.spent,
                    updated_at = p_created
                FROM input
                WHERE account.id = input.account_id
                  AND account.balance + input.earned - input.spent >= 0
                RETURNING account.id, account.balance, account.total_earned, account.total_spent
            ), inserted AS (
                INSERT INTO credits_credittransaction (
                    account_id, kind, amount, idempotency_key, created_at, source, description,
                    stripe_event_id, legacy_transaction_id, migrated_from, metadata, actor_id,
                    reason, reverses_id, balance_before, balance_after
                )
                SELECT input.account_id, input.kind, input.earned - input.spent, input.key,
                       p_created, input.source, input.description, NULL, NULL, '',
                       input.metadata, NULL, '', NULL,
                       moved.balance - input.earned + input.spent, moved.balance
                FROM moved JOIN input ON input.account_id = moved.id
                RETURNING id, account_id
            )
            SELECT array_agg(inserted.id ORDER BY input.ord),
                   array_agg(moved.balance ORDER BY input.ord),
                   array_agg(moved.total_earned ORDER BY input.ord),
                   array_agg(moved.total_spent ORDER BY input.ord)
            INTO set_entry, set_balance, set_earned, set_spent
            FROM input
            LEFT JOIN moved ON moved.id = input.account_id
            LEFT JOIN inserted ON inserted.account_id = input.account_id;
            as_set := true;
        EXCEPTION WHEN OTHERS THEN
            -- Undone; one entry at a time below says which entry it was.
            as_set := false;
        END;
    END IF;

    FOR i IN 1 .. coalesce(n, 0) LOOP
        o_entry := NULL;
        o_balance := NULL;
        o_earned := NULL;
        o_spent := NULL;
        o_sqlstate := NULL;
        o_message := NULL;
        IF as_set THEN
            o_entry := set_entry[i];
            o_balance := set_balance[i];
            o_earned := set_earned[i];
            o_spent := set_spent[i];
        ELSE
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
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- reverse
DROP FUNCTION IF EXISTS credits_post_entries(json, timestamptz, text);
