"""Storage errors. Callers catch these, never a driver's own exceptions."""


class StorageError(Exception):
    """Base of every error storage raises on purpose."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or did not answer in time. Nothing was written."""


class Conflict(StorageError):
    """A uniqueness rule refused the write. ``field`` names the rule (``username``, ``email``,
    ``member``)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already exists")
        self.field = field


class InvalidData(StorageError):
    """The database refused the data itself (a NUL character, a number out of range).
    Nothing was written; retrying the same data fails again."""
