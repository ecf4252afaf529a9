"""One module per scheme of the survey. Importing this package registers them all.

`licodec.codecs()` lists the codec names. Because importing this subpackage rebinds the name `licodec.codecs`
to it, the package itself is made callable with the same meaning.
"""

import sys
import types

from licodec.codecs import (  # noqa: F401
    agustsson2019,
    balle2017,
    balle2018,
    ladune2023,
    lee2019,
    mentzer2018,
    minnen2018,
    minnen2018_local,
    rippel2017,
    stacked,
    theis2017,
    toderici,
)


class _CallablePackage(types.ModuleType):
    def __call__(self) -> list[str]:
        from licodec.registry import names

        return names()


sys.modules[__name__].__class__ = _CallablePackage
