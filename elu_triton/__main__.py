"""``python -m elu_triton [--json]``: the environment report, for bug reports."""

import argparse
import json

from .environment import as_dict, report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elu_triton",
        description="Print the versions and, per device, the backend that runs the layer.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    print(json.dumps(as_dict(), indent=2) if args.json else report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
