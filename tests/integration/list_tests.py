"""Prints Class.method for every test in the integration modules (used by CMake)."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
for name in sorted(os.listdir(here)):
    if name.startswith("test_") and name.endswith(".py"):
        suite = unittest.defaultTestLoader.loadTestsFromName(name[:-3])
        stack = [suite]
        while stack:
            s = stack.pop()
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    stack.append(t)
                else:
                    cls = type(t)
                    print(f"{name[:-3]}.{cls.__name__}.{t._testMethodName}")
