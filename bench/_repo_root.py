"""Puts the repository root on sys.path so a bench can import the shared test support (tests/support/).

``python bench/x.py`` puts bench/ on sys.path, not the repository root, and
tests/support/ is not installed (the wheel ships only what zomg runs).
Appended, not prepended: an installed zomg still wins over the source tree.
"""
import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
