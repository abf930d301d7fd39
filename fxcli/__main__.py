import signal


def _early_exit(signum: int, frame: object) -> None:
    """A signal before ``process`` installs its handlers: nothing is written yet."""
    raise SystemExit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, _early_exit)

from fxcli.cli.app import main  # noqa: E402

main()
