"""The errors a user sees as one line (never a traceback)."""


class ThreetierError(Exception):
    """A failure reported to the user as one line; exit status 1."""


class UsageError(ThreetierError):
    """Bad arguments, bad config, refused confirmation; exit status 2."""
