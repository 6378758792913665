"""Under tox the suite must exercise the installed wheel, not the source tree."""
import os

import pytest

import zomg


@pytest.mark.skipif(not os.environ.get("ZOMG_TEST_INSTALLED"), reason="only meaningful under tox")
def test_zomg_is_imported_from_the_installed_package():
    source = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zomg")
    assert not os.path.abspath(zomg.__file__).startswith(source + os.sep), zomg.__file__
    assert "site-packages" in zomg.__file__


@pytest.mark.skipif(not os.environ.get("ZOMG_TEST_INSTALLED"), reason="only meaningful under tox")
def test_the_man_page_is_installed_where_man_looks_beside_the_venvs_bin():
    import sys

    # man-db maps each PATH entry DIR/bin to DIR/share/man: an activated venv's man page is found.
    assert os.path.isfile(os.path.join(sys.prefix, "share", "man", "man1", "zomg.1"))
