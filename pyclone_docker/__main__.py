"""`python3 -m pyclone_docker ...` and the zipapp's entry point."""

import sys

if sys.argv[1:2] == ["askpass"]:  # ssh's password helper: start fast, import nothing else
    from .lib.askpass import client_main

    sys.exit(client_main(sys.argv[2:]))

if sys.argv[1:2] == ["proxy-connect"]:  # ssh's ProxyCommand through a proxy (lib/proxyconnect.py)
    from .lib.proxyconnect import main as proxy_main

    sys.exit(proxy_main(sys.argv[2:]))

from .cli import main

sys.exit(main())
