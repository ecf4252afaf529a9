"""licodec's retired weights files (see manifest.json beside this file); `licodec.store` finds them by hash."""

from pathlib import Path

FOLDER = Path(__file__).parent
