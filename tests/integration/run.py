#!/usr/bin/env python3
"""Runs the multi-process tests against an itsukad binary.

    python3 tests/integration/run.py --bin build/bin/itsukad [-k pattern] [-v]
"""
import argparse
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/itsukad")
    ap.add_argument("-k", dest="pattern", action="append", help="only tests matching")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    os.environ["ITSUKAD"] = os.path.abspath(args.bin)
    import harness
    harness.ITSUKAD = os.environ["ITSUKAD"]
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [f"*{p}*" for p in args.pattern]
    suite = loader.discover(here, pattern="test_*.py")
    result = unittest.TextTestRunner(verbosity=2 if args.v else 1).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
