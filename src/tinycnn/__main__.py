import sys

from tinycnn.cli import main

sys.exit(main())
