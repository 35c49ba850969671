"""Domain errors of the migration. Each has a stable `code` the API turns into its error shape
(`credits.api.errors`); messages are constants tests reuse."""

from enum import StrEnum

from credits.exceptions import DomainError


class ErrorCode(StrEnum):
    RUN_ALREADY_ACTIVE = "run_already_active"


class MigrationError(DomainError):
    code: ErrorCode
    message: str = "The migration operation failed."


class RunAlreadyActive(MigrationError):
    code = ErrorCode.RUN_ALREADY_ACTIVE
    message = "An execute run of these sources is already running; wait for it to finish."
    status_code = 409
