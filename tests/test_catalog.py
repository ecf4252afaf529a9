"""licodec.catalog agrees with the codec classes and the zoo, and reads them without importing torch."""

import subprocess
import sys

from licodec import catalog, zoo
from licodec.registry import codec_class, names


def test_names_and_taxonomies_match_the_registry():
    assert catalog.names() == names()
    for name in names():
        assert catalog.taxonomy(name) == codec_class(name).taxonomy, name


def test_every_taxonomy_is_read_from_source():
    found, complete = catalog._scan()
    assert complete and all(found[name] is not None for name in names())


def test_zoo_index_matches_and_every_shipped_file_is_in_the_table():
    assert catalog.zoo_index() == zoo.index()
    missing = set(e["hash"] for e in zoo.index().values()) - set(catalog._known_qualities())
    assert not missing, "catalog.json is stale: run `python -m licodec.catalog`"


def test_no_torch_import():
    code = ("import sys; from licodec import catalog; catalog.zoo_index(); "
            "[catalog.taxonomy(n) for n in catalog.names()]; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
