"""Run the command line as ``python -m convcli``."""

if __name__ == "__main__":
    # SIGTERM, SIGHUP and Ctrl-C stop cleanly from the start, even while the
    # command line's own modules are still being imported.
    from convcli import workers

    workers.handle_stop_signals()
    try:
        from convcli.cli import main
    except KeyboardInterrupt:
        raise SystemExit(workers.stop_exit_code()) from None
    main()
