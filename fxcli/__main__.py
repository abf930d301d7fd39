from fxcli.cli.app import main

main()
