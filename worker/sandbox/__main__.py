"""`python -m worker.sandbox`: run the sandbox from the command line."""

from worker.sandbox.cli import main

raise SystemExit(main())
