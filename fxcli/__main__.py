from fxcli.cli.signals import exit_at_once

exit_at_once()  # before the commands are imported: a signal exits at once

from fxcli.cli.app import main  # noqa: E402

main()
