"""Expected failures of the workflows. The API maps each to the contract's JSON error once."""


class ServiceError(Exception):
    type = "internal_error"
    status = 500

    def __init__(self, message, *, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ServiceError):
    type = "validation_error"
    status = 400


class NotFound(ServiceError):
    type = "not_found"
    status = 404


class Conflict(ServiceError):
    type = "conflict"
    status = 409


class LiveChatUnavailable(ServiceError):
    """LiveChat failed (after retries) while the caller waited."""

    type = "livechat_error"
    status = 502
