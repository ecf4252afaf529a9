"""Build hook of licodec-archive: the wheel's weights files are read from git history (build_archive.py), so the
repository holds only their manifest. Build it from a clone with full history: `pip install ./archive`."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_archive  # noqa: E402


class BuildWithWeights(build_py):
    """build_py, then the retired weights files and the manifest into the package's build folder."""

    def run(self):
        super().run()
        try:
            entries = build_archive.build(Path(self.build_lib) / "licodec_archive")
        except build_archive.HistoryError as error:
            raise SystemExit(f"licodec-archive: {error}") from None
        print(f"licodec-archive: {len(entries)} weights files from git history", file=sys.stderr)


setup(cmdclass={"build_py": BuildWithWeights})
