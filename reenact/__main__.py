from reenact_cli.app import main

main()
