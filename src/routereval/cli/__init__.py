"""The ``routereval`` command line (Typer + rich). Each module registers one group of commands."""
