"""Run the command line as ``python -m convcli``."""

from convcli.cli import main

if __name__ == "__main__":
    main()
