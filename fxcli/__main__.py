import os
import signal


def _early_exit(signum: int, frame: object) -> None:
    """A signal before ``process`` installs its handlers: nothing is written yet, so
    exit at once (an exception raised here could surface inside a C extension's
    import, e.g. torch's pybind11 code, and abort the interpreter)."""
    os._exit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, _early_exit)

from fxcli.cli.app import main  # noqa: E402

main()
