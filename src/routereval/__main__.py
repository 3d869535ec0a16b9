from routereval.cli.main import main

main()
