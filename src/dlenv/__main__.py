from dlenv.cli import entry

raise SystemExit(entry())
