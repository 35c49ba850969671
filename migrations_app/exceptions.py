"""Domain errors of the migration. Each has a stable `code` the API turns into its error shape
(`credits.api.errors`); messages are constants tests reuse."""

from enum import StrEnum


class ErrorCode(StrEnum):
    RUN_ALREADY_ACTIVE = "run_already_active"


class MigrationError(Exception):
    code: ErrorCode
    message: str = "The migration operation failed."
    status_code = 400
    # The API's exception handler renders any exception that says so in the error shape.
    is_domain_error = True

    def __init__(self, message: str | None = None, **details):
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class RunAlreadyActive(MigrationError):
    code = ErrorCode.RUN_ALREADY_ACTIVE
    message = "An execute run of these sources is already running; wait for it to finish."
    status_code = 409
