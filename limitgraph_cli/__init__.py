"""limitgraph's command-line client, `limitgraph`: talks to a limitgraph server over HTTP.

Depends on httpx and rich only, never on Django or the server's code, so it installs on any
machine with an API key (`pip install .` from the repository). Importing the package itself
loads nothing: the server reuses limitgraph_cli.bundle (standard library only).
"""

__version__ = "0.1.0"
