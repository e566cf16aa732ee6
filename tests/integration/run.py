#!/usr/bin/env python3
"""Runs the multi-process tests against an itsukad binary.

    python3 tests/integration/run.py --bin build/bin/itsukad [-k pattern] [-v]
"""
import argparse
import os
import signal
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
    if not os.access(args.bin, os.X_OK):
        ap.error(f"no executable itsukad at {args.bin} (build first: cmake -B build && cmake --build build)")
    # SIGTERM/SIGHUP stop the run like Ctrl-C (unittest lets KeyboardInterrupt through,
    # where it would record SystemExit as a test error and go on); harness.py's atexit
    # hook then stops every itsukad the tests started.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    os.environ["ITSUKAD"] = os.path.abspath(args.bin)
    import harness
    harness.ITSUKAD = os.environ["ITSUKAD"]
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [f"*{p}*" for p in args.pattern]
    suite = loader.discover(here, pattern="test_*.py")
    try:
        result = unittest.TextTestRunner(verbosity=2 if args.v else 1).run(suite)
    except KeyboardInterrupt as e:
        print(f"\nintegration tests interrupted ({e or 'Ctrl-C'}); stopping the nodes they started",
              file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
