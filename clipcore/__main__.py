"""``python -m clipcore {book,train,recordings} ...``: the book runner, the training command and
the recordings of finished runs."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "book": "clipcore.book",
        "train": "clipcore.training.cli",
        "recordings": "clipcore.recordings",
    }
    if not argv or argv[0] not in commands:
        print(
            "usage: python -m clipcore {book,train,recordings} [options]   (add --help after a command)",
            file=sys.stderr,
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    import importlib

    return importlib.import_module(commands[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
