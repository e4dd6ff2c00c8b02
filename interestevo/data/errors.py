"""The one exception every bad input to the data layer raises."""


class DataFormatError(ValueError):
    """A file or argument the data layer cannot use.

    The message is one line naming the file (or argument) and what was expected, so the CLI
    can print it as is and exit non-zero.
    """
