from __future__ import annotations

from limitgraph_cli.main import main

raise SystemExit(main())
