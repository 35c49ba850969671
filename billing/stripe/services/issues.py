"""Staff settling the webhook events recorded as issues."""

from django.utils import timezone

from billing.models import StripeEventIssue


def stripe_issues_resolve(*, issue_ids: list[int], actor) -> int:
    """Mark webhook issues resolved by a staff member; return how many were open."""
    return StripeEventIssue.objects.filter(pk__in=issue_ids, is_resolved=False).update(
        is_resolved=True, resolved_by=actor, resolved_at=timezone.now()
    )
