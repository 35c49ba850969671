"""Domain errors of the migration. Each has a stable `code` the API turns into its error shape
(`core.api.errors`); messages are constants tests reuse."""

from enum import StrEnum

from core.exceptions import DomainError


class ErrorCode(StrEnum):
    RUN_ALREADY_ACTIVE = "run_already_active"
    PERMISSION_DENIED = "permission_denied"
    INVALID = "invalid"


class MigrationError(DomainError):
    code: ErrorCode
    message: str = "The migration operation failed."


class RunAlreadyActive(MigrationError):
    code = ErrorCode.RUN_ALREADY_ACTIVE
    message = "An execute run of these sources is already running; wait for it to finish."
    status_code = 409


class MigrationPermissionDenied(MigrationError):
    """A staff member without the permission this migration operation names (HTTP 403)."""

    code = ErrorCode.PERMISSION_DENIED
    message = "You do not have the permission for this migration operation."
    status_code = 403


class InvalidRunRequest(MigrationError):
    """A run's parameters that cannot be run (HTTP 400; the command exits 2). `details` maps
    each field to its problems, as the API's other validation errors do."""

    code = ErrorCode.INVALID
    message = "The run's parameters are not valid."
    status_code = 400

    def __init__(self, field: str, problem: str, *, key: str = ""):
        shown = f"{key}: {problem}" if key else problem
        super().__init__(f"{field}: {shown}", **{field: [shown]})
        self.field = field
        self.key = key  # the currency of a rate
        self.problem = problem
