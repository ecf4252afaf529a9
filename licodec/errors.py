"""The exceptions licodec raises. The CLI turns each into one line on stderr and a non-zero exit."""


class LicodecError(Exception):
    """Base class of every error licodec reports to a user."""


class BitstreamError(LicodecError):
    """A .lic file that is not one, is truncated, corrupted or from an unknown version."""


class ImageError(LicodecError):
    """An image that cannot be read or written, or has a mode licodec does not handle."""


class WeightsError(LicodecError):
    """Weights that are missing, do not match a bitstream, or cannot be loaded."""


class CodecError(LicodecError):
    """An unknown codec name or an unsupported quality."""


class ResourceError(LicodecError):
    """A request beyond what licodec allows or the machine has: more pixels than the limit, out of memory."""


class LicodecWarning(UserWarning):
    """Something licodec did that loses information the user asked it to accept (the CLI prints one line)."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error is an allocator's (PyTorch raises RuntimeError when it cannot allocate)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()
                                                or "not enough memory" in text)
