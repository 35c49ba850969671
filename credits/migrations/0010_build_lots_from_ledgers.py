"""Build lots for every account from its entries, so that a ledger written before lots existed
meets the new invariant (balance = sum of lots' remaining) and its spends name the lots that paid.

Each account's entries are replayed in order: credits added become a lot (its category from
CREDITS_LOT_CATEGORIES, as new entries get theirs; no expiry, since nothing before lots
expired); credits removed are drawn down by the rule as it stood when this migration was
written (a frozen copy below, so a later change to the live rule never changes what this did);
a reversal of credits added takes from their own lot first; a reversal of credits removed gives
back to the lots they came from. Reversing it deletes the lots and allocations it made (both
tables are new, so nothing else wrote them before it ran).
"""

from decimal import Decimal

from django.conf import settings
from django.db import migrations

CHUNK = 2000
# The rule's ranks and categories when this migration was written (used when settings name none).
RANKS = {"promotional": 0, "monthly": 0, "migration": 1, "paid": 2}
CATEGORIES = {
    "purchase": "paid",
    "grant": "promotional",
    "adjustment": "promotional",
    "monthly_grant": "monthly",
    "migration": "migration",
    "migration:usd_balance": "paid",
    "migration:usage_tiers": "monthly",
    "migration:rate_limit": "promotional",
}
KNOWN = {"paid", "promotional", "migration", "monthly"}


def _category(kind, source):
    categories = getattr(settings, "CREDITS_LOT_CATEGORIES", CATEGORIES)
    found = categories.get(f"{kind}:{source}") or categories.get(kind) or "promotional"
    return found if found in KNOWN else "promotional"


def _draw(lots, amount, first):
    """(lot, taken) for drawing `amount` from `lots` (dicts), the lot `first` before the rule."""
    ranks = getattr(settings, "CREDITS_DRAW_DOWN_RANKS", RANKS)

    def key(lot):
        return (lot is not first, ranks.get(lot["category"], 1000), lot["created"], lot["order"])

    plan, left = [], amount
    for lot in sorted((lot for lot in lots if lot["remaining"] > 0), key=key):
        if left <= 0:
            break
        taken = min(lot["remaining"], left)
        plan.append((lot, taken))
        left -= taken
    if left > 0:
        raise ValueError(f"lots hold {amount - left} of {amount}: the ledger does not add up")
    return plan


def build_lots(apps, schema_editor):
    Entry = apps.get_model("credits", "CreditTransaction")
    Lot = apps.get_model("credits", "CreditLot")
    Allocation = apps.get_model("credits", "CreditAllocation")
    db = schema_editor.connection.alias
    lots_out, allocations_out = [], []

    def flush():
        # Whole accounts only: lots first (their ids are needed), then their allocations.
        made = Lot.objects.using(db).bulk_create(
            [
                Lot(
                    account_id=lot["account_id"],
                    category=lot["category"],
                    amount=lot["amount"],
                    remaining=lot["remaining"],
                    effective_at=lot["created"],
                    entry_id=lot["entry_id"],
                )
                for lot in lots_out
            ]
        )
        for lot, row in zip(lots_out, made, strict=True):
            lot["id"] = row.pk
        Allocation.objects.using(db).bulk_create(
            [
                Allocation(entry_id=entry_id, lot_id=lot["id"], amount=amount)
                for entry_id, lot, amount in allocations_out
            ]
        )
        lots_out.clear()
        allocations_out.clear()

    account_id, lots, lot_of_entry, taken_by_entry = None, [], {}, {}
    entries = (
        Entry.objects.using(db)
        .exclude(kind="history")
        .order_by("account_id", "id")
        .values_list(
            "id",
            "account_id",
            "kind",
            "amount",
            "source",
            "migrated_from",
            "reverses_id",
            "created_at",
        )
    )
    for row in entries.iterator(chunk_size=CHUNK):
        entry_id, entry_account, kind, amount, source, migrated_from, reverses_id, created = row
        if kind == "migration" and migrated_from:
            # Every migration entry's source is "migration"; the legacy source it came from is
            # migrated_from, which CREDITS_LOT_CATEGORIES names ("migration:usd_balance").
            source = migrated_from
        if entry_account != account_id:
            if len(lots_out) + len(allocations_out) >= CHUNK:
                flush()
            account_id, lots, lot_of_entry, taken_by_entry = entry_account, [], {}, {}
        amount = Decimal(amount)
        if amount > 0:
            left = amount
            if kind == "reversal":
                # A reversal of credits removed: back to the lots they were taken from.
                for lot, taken in taken_by_entry.get(reverses_id, []):
                    given = min(taken, left)
                    if given <= 0:
                        break
                    lot["remaining"] += given
                    allocations_out.append((entry_id, lot, -given))
                    left -= given
            if left > 0:
                # Credits added (or given back that no lot gave): a lot of their own.
                lot = {
                    "id": None,
                    "order": len(lots),
                    "account_id": entry_account,
                    "category": _category(kind, source) if kind != "reversal" else "promotional",
                    "amount": left,
                    "remaining": left,
                    "created": created,
                    "entry_id": entry_id,
                }
                lots.append(lot)
                lots_out.append(lot)
                lot_of_entry[entry_id] = lot
        else:
            plan = _draw(lots, -amount, lot_of_entry.get(reverses_id))
            taken_by_entry[entry_id] = plan
            for lot, taken in plan:
                lot["remaining"] -= taken
                allocations_out.append((entry_id, lot, taken))
    flush()


def remove_lots(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("credits", "CreditAllocation").objects.using(db).all().delete()
    apps.get_model("credits", "CreditLot").objects.using(db).all().delete()


class Migration(migrations.Migration):
    dependencies = [("credits", "0009_lots_and_holds")]

    operations = [migrations.RunPython(build_lots, remove_lots)]
