"""Project-wide error type: a message that says what is wrong and how to fix it."""


class AietlInputError(ValueError):
    """Bad input detected by the project (not a bug): the message names the input and the fix."""
