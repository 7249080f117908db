"""Storage errors. Callers catch these, never a driver's own exceptions."""


class StorageError(Exception):
    """Base of every error storage raises on purpose."""


class StorageUnavailable(StorageError):
    """The database cannot be reached, failed, or did not answer in time: try again later.

    Whether a write that raised this was committed is unknown (the connection may have died
    between the commit and its answer): resending a message under the same ``client_id``
    is answered by the stored row, never stored twice."""


class InvalidData(StorageError):
    """The database refuses the data itself: text with a NUL (U+0000) or a lone surrogate,
    an integer outside signed 64 bits, a reference to a user, group or message that does not
    exist, or another rule of the schema. Sending the same call again cannot succeed.
    Nothing was written: every check runs, or the database refused, before anything was
    committed."""


class Conflict(StorageError):
    """A uniqueness rule refused the write. ``field`` names the rule (``username``, ``email``,
    ``member``). Nothing was written."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already exists")
        self.field = field
