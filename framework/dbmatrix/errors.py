"""Exceptions shared by every layer."""


class UsageError(Exception):
    """Bad input or configuration: the CLI prints the message on one line and exits 2."""


class DriverError(Exception):
    """A database error normalised across drivers.

    ``code`` is the SQLSTATE (PostgreSQL, and SQLite's result-code name) or the MySQL errno as a string;
    ``cls`` the driver's exception class name; ``message`` the first line of the server's message,
    already scrubbed of secrets.
    """

    def __init__(self, code: str | None, cls: str, message: str):
        super().__init__(f"{cls}[{code}]: {message}" if code else f"{cls}: {message}")
        self.code = code
        self.cls = cls
        self.message = message
