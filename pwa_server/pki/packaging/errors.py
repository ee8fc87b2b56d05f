"""The packaging package's own exception."""


class PackagingError(Exception):
    """A packaging resource (such as the profile-signing identity) is missing or unusable.

    The message names the file and what is wrong with it, for an operator to fix.
    """
