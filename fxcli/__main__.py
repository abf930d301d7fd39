import sys

from fxcli.cli import gc_pause
from fxcli.cli.signals import exit_at_once

gc_pause.pause(sys.argv)  # before Typer's import (the console script's main: after it)
exit_at_once()  # before the commands are imported: a signal exits at once

from fxcli.cli.app import main  # noqa: E402

main()
