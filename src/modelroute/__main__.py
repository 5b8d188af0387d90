import sys

from modelroute.cli import main

sys.exit(main())
