"""Test support shared by the tests and the benches: events, loopback servers, in-process WSGI, running zomg.

It lives beside the tests, not in the zomg package: the wheel ships only what
zomg runs. Tests import it as ``tests.support.*`` (pytest puts the ``tests``
namespace in place, from the source tree, under tox and from the sdist); the
benches as the same names once bench/_repo_root.py has put the repository on
sys.path.
"""
