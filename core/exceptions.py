"""The root of every app's domain errors.

Each app keeps its own hierarchy in its `exceptions.py` (the ledger's CreditError, billing's
BillingError, the migration's MigrationError), all derived from DomainError here, so the one
exception handler (`core.api.errors`) answers all of them alike without importing any app.
"""


class DomainError(Exception):
    """An error the API answers in its error shape: a stable code, a message, details, a status."""

    code: str
    message: str = "The operation failed."
    status_code = 400

    def __init__(self, message: str | None = None, **details):
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)
