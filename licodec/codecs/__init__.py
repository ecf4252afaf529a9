"""One module per scheme of the survey. Importing this package registers them all."""

from licodec.codecs import balle2017, balle2018  # noqa: F401
