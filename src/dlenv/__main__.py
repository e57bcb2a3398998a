from dlenv.cli import main

raise SystemExit(main())
