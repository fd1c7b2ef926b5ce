"""`python -m worker`: the same as the `marketo-worker` command."""

from worker.cli import main

raise SystemExit(main())
